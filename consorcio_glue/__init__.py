"""AWS Glue job: one table from the raw zone (what DMS wrote) to the transformed zone and Aurora PostgreSQL.

A package shipped as a wheel (with `consorcio_core`) to an AWS Glue 5.0 Spark job (`--extra-py-files`; the
entry script `glue/consorcio_glue_job.py` only calls `consorcio_glue.main.main`), and run locally as
`python -m consorcio_glue`. It imports only the standard library, pyarrow, numpy, psycopg, boto3, dagster_pipes
and, on Glue, pyspark: everything it knows about the table comes in the table spec that Dagster builds from
the catalog (`consorcio_assets.glue_runner.spec`). It talks to Dagster through Pipes (S3 context and messages on AWS,
temporary files locally, chosen from the Pipes parameters) and exits non-zero on failure.

Under Spark (Glue, or `--spark on`) the raw files' row groups are spread over the executors (`consorcio_glue.spark`);
without it the whole table streams through this process (`consorcio_glue.load`).

Actions (`--action`):
  load      read raw/<schema>/<Table>/LOAD*.parquet|csv, transform by the spec, write transformed/<table>/
            part-NNNNN.parquet (temporary prefix, then swapped in) and load Aurora: binary COPY into a
            staging table, constraints and indexes after the data, then one transaction swaps it in
            (`--swap deferred`: the finished staging table is left for the batch's `publish` run).
  validate  VALIDATE the foreign keys left NOT VALID by the swaps of a batch of tables.
  publish   swap every table a batch staged (`load --swap deferred`) in ONE transaction, foreign keys validated
            before it commits; any failure rolls all of them back. The staged tables are dropped either way
            (`--discard true`: only dropped, after a failed load elsewhere in the batch).

Arguments (Glue job arguments, `--name value`; Glue's own --JOB_ID etc. are ignored):
  --table-spec        the spec: inline JSON, or s3://, file:// or a path to it
  --stages            transformed,aurora (default both; `aurora` alone loads from the transformed zone)
  --lake-uri          root of the lake: s3://bucket/prefix or file:///dir
  --raw-folder        DMS BucketFolder (default raw)
  --raw-format        parquet|csv (DMS DataFormat)
  --csv-delimiter --csv-null-value --csv-header --csv-rfc4180
                      DMS CsvDelimiter, CsvNullValue, AddColumnName, Rfc4180 (default true): the one DMS CSV
                      reader (`consorcio_core.dms_csv`) parses with them
  --extra-columns     columns DMS adds before the table's (IncludeOpForFullLoad's Op, TimestampColumnName)
  --on-invalid        fail (default) or reject: route rows that violate the target type to consorcio_rejects
  --copy-streams      parallel binary COPY connections (default 2)
  --batch-rows --part-rows  rows per record batch (65536) and per transformed part file (1048576)
  --fk-validation     immediate (default: validated inside the swap transaction) or deferred (left NOT VALID
                      for the batch's closing `--action validate` run)
  --target-secret-id  Secrets Manager secret with host/port/username/password/dbname (AWS)
  --target-url-env    name of an environment variable holding a libpq URL (local runs)
  --tables            validate: comma-separated target tables whose foreign keys to validate (default all);
                      publish: the batch's staged tables, parents first
  --swap              immediate (default: the load swaps its table in) or deferred (the load leaves the finished
                      staging table for the batch's closing `--action publish` run)
  --batch-tables      deferred: the tables staged by the same batch (a child's keys are validated against their
                      staged parents; in reject mode rows whose parent is not staged are rejected too)
  --staging-schema    publish: where the batch staged its tables (default consorcio_staging)
  --discard           publish: drop the batch's staged tables without swapping anything (default false)
  --run-id            recorded with rejected rows
  --report-checks     report the `no_rejected_rows` asset check through Pipes (default true)
  --spark             auto (default: Spark when a Spark runtime is there), on or off
Prints the run's figures as one JSON line on stdout; errors go to stderr as one `ERROR: ...` line.
"""
