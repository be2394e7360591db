"""Concurrency pools: the steps that load a real system share one pool per system, so the deployment's instance
(deploy/dagster.yaml `concurrency.pools`) caps them across all runs, whatever the run queue lets through.

Locally no limit is configured and the pools change nothing.
"""

#: Steps that read the production SQL Server: the DMS full load and the reconciliation checks (the source
#: observation is a `multi_observable_source_asset`, which takes no pool; it runs one count per table).
SQLSERVER_POOL = "sqlserver"
#: The Glue batch step (each runs up to CONSORCIO_GLUE_MAX_CONCURRENT_RUNS Glue job runs).
GLUE_POOL = "glue"
