"""Collective group implementations (Ray's ``ray.util.collective.collective_group`` path)."""
