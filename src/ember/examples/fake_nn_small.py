# ruff: noqa  (seed program kept verbatim; see the docstring)
"""Seed 000 (Ray single-machine and cluster deployment notes): the smaller fake_NN
variant (1000x150, 150x150, 150x100 layers), 10 actors, 10,000 batched predict calls.
Connects to a running cluster (address='auto'). Unchanged except ``import ember as ray``."""

import ember as ray
import numpy as np
import time


# Define the Sigmoid function
def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# A Random-parameter Neural Network
class fake_NN:
    def __init__(self):
        self.W1 = np.random.rand(1000, 150)
        self.B1 = np.random.rand(150)
        self.W2 = np.random.rand(150, 150)
        self.B2 = np.random.rand(150)
        self.W3 = np.random.rand(150, 100)
        self.B3 = np.random.rand(100)

    def forward(self, input):
        x = sigmoid(input @ self.W1 + self.B1)
        x = sigmoid(x @ self.W2 + self.B2)
        x = sigmoid(x @ self.W3 + self.B3)
        return x

    def forwards(self, inputs):
        result = []
        for input in inputs:
            result.append(self.forward(input))
        return result


# Ray Distributed Actor
@ray.remote
class Actor:
    def __init__(self):
        self.model = fake_NN()

    def predict(self, inputs):
        return self.model.forwards(inputs)


# Initialize Ray
ray.init(address="auto", dashboard_host="0.0.0.0")

# Task parameters
task_num = 100000
batch_size = 10

# Initialize actors
actor_num = 10
actors = [Actor.remote() for _ in range(actor_num)]

# Start timer
start_timer = time.time()

# Distribute tasks
tasks = []
for i in range(task_num // batch_size):
    inputs = [np.random.rand(1000) for _ in range(batch_size)]
    tasks.append(actors[i % actor_num].predict.remote(inputs))

# Get results
results = ray.get(tasks)

# Print time used
print(f"Time used: {time.time() - start_timer:.2f} seconds")

# Shutdown Ray
ray.shutdown()
