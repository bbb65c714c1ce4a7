"""Shared paths of the deployment files (Dockerfile, docker/, deploy/kubernetes/)."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
COMPOSE = os.path.join(ROOT, "docker", "compose.yaml")
ENTRYPOINT = os.path.join(ROOT, "docker", "entrypoint.sh")
KUBERNETES = os.path.join(ROOT, "deploy", "kubernetes")
