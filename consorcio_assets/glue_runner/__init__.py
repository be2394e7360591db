"""The Glue stage: the table spec and Aurora DDL built from the catalog, the local Glue client and the
Dagster resource that runs the Glue job (the `consorcio_glue` package) through `dagster_aws.pipes.PipesGlueClient`."""
