"""ember.serve: model serving over HTTP with replicas (Ray Serve's API)."""
