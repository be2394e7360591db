"""Code both the Dagster side (`consorcio_assets`) and the Glue job (`consorcio_glue`) need, kept once.

No Dagster import here: this package ships in the Glue job's wheel, where only pyarrow, numpy, psycopg, boto3
and dagster-pipes are installed.
"""
