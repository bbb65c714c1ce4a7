# The quickstart of Ray Serve's documentation, with only the import changed
# (``import ember as ray`` / ``from ember import serve``) and a test port.
from __future__ import annotations

import requests
from starlette.requests import Request

import ember as ray
from ember import serve

ray.init(num_cpus=2)
serve.start(http_options={"host": "127.0.0.1", "port": 18660})


@serve.deployment(num_replicas=2, ray_actor_options={"num_cpus": 0.2, "num_gpus": 0})
class Translator:
    def __init__(self):
        self.words = {"hello": "bonjour", "world": "monde"}

    def translate(self, text: str) -> str:
        return " ".join(self.words.get(w, w) for w in text.split())

    async def __call__(self, http_request: Request) -> str:
        english_text: str = await http_request.json()
        return self.translate(english_text)


translator_app = Translator.bind()
serve.run(translator_app)

response = requests.post("http://127.0.0.1:18660/", json="hello world")
assert response.status_code == 200, response.text
french_text = response.text
print(french_text)
assert french_text == "bonjour monde"

serve.shutdown()
ray.shutdown()
print("OK")
