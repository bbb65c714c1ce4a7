# ruff: noqa  (seed program kept verbatim; see the docstring)
"""Seed 000 (Ray single-machine and cluster deployment notes): the first test program,
five ``simple_task`` tasks that print the node they run on. Unchanged except
``import ember as ray``."""

import ember as ray
import time


# 定义一个简单的任务
@ray.remote
def simple_task(x):
    print(f"Task {x} is running on node {ray.get_runtime_context().node_id}")
    time.sleep(1)  # 模拟一些计算时间
    return x * x


# 初始化 Ray
ray.init()

# 创建多个任务
num_tasks = 5
task_ids = [simple_task.remote(i) for i in range(num_tasks)]

# 获取任务结果
results = ray.get(task_ids)

# 打印结果
print("Results:", results)
