# A FastAPI ingress as Ray Serve's documentation writes it ("Set Up FastAPI and HTTP").
from __future__ import annotations

import requests
from fastapi import FastAPI

import ember as ray
from ember import serve

ray.init(num_cpus=2)
serve.start(http_options={"host": "127.0.0.1", "port": 18662})

app = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class MyFastAPIDeployment:
    def __init__(self, greeting: str):
        self.greeting = greeting

    @app.get("/")
    def root(self):
        return "Hello, world!"

    @app.get("/hello/{name}")
    async def hello(self, name: str, excited: bool = False):
        return {"message": f"{self.greeting}, {name}{'!' if excited else '.'}"}


serve.run(MyFastAPIDeployment.bind("Hi"), route_prefix="/api")

assert requests.get("http://127.0.0.1:18662/api/").json() == "Hello, world!"
resp = requests.get("http://127.0.0.1:18662/api/hello/ann", params={"excited": "true"})
assert resp.json() == {"message": "Hi, ann!"}, resp.text
print(resp.json())

serve.shutdown()
ray.shutdown()
print("OK")
