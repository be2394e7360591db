"""How Dagster runs here: the instance, the run launcher, pools, dead runs, preconditions."""
