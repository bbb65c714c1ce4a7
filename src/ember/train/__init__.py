"""ember.train: data-parallel training on worker groups (Ray Train's API)."""
