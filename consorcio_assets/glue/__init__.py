"""The Glue stage: the table spec and Aurora DDL built from the catalog, the local Glue client and the
Dagster resource that runs `glue/consorcio_glue_job.py` through `dagster_aws.pipes.PipesGlueClient`."""
