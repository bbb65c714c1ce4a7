"""ember.data: streaming datasets of Arrow blocks (Ray Data's API)."""
