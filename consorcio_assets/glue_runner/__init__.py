"""How Dagster runs the Glue job (the `consorcio_glue` package): the resource (AWS Glue through
`dagster_aws.pipes.PipesGlueClient`, or a local stand-in of the Glue API that runs the job as a subprocess), and
the table spec the job receives, built from the catalog. The Aurora DDL it applies lives in `target/`."""
