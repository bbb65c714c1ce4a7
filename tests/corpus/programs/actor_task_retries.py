import os
import tempfile

import ray

ray.init(num_cpus=2)

marker = os.path.join(tempfile.mkdtemp(), "crashed-once")


@ray.remote(max_restarts=1, max_task_retries=1)
class Service:
    def handle(self, marker_path):
        # The first attempt kills the process; the retry on the restarted actor
        # finds the marker and succeeds.
        if not os.path.exists(marker_path):
            open(marker_path, "w").close()
            os._exit(1)
        return "handled"


svc = Service.remote()
assert ray.get(svc.handle.remote(marker), timeout=60) == "handled"
print("task retries ok")
ray.shutdown()
