"""ember.tune: hyperparameter search over trials run as actors (Ray Tune's API)."""
