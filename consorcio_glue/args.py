"""The job's arguments: Glue passes them as `--name value` pairs (plus its own --JOB_ID, --JOB_RUN_ID...,
ignored). Parsed once into a typed, frozen `JobArgs` the rest of the job reads."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from consorcio_core.dms_endpoint import EndpointSettings
from consorcio_glue.errors import JobError

ACTIONS = ("load", "validate", "publish")
SWAPS = ("immediate", "deferred")
STAGES = frozenset({"transformed", "aurora"})
SPARK_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class JobArgs:
    action: str = "load"
    table_spec: str | None = None  # inline JSON, or s3://, file:// or a path to it
    stages: frozenset[str] = STAGES
    lake_uri: str | None = None
    raw_folder: str = "raw"  # DMS BucketFolder
    raw_format: str = "parquet"  # DMS DataFormat
    csv_delimiter: str = ","
    csv_null_value: str = ""
    csv_header: bool = False  # DMS AddColumnName
    csv_rfc4180: bool = True  # DMS Rfc4180: values quoted with double quotes where needed
    extra_columns: tuple[str, ...] = ()  # columns DMS adds before the table's (Op, TimestampColumnName)
    on_invalid: str = "fail"  # or reject: rows violating the target type go to consorcio_rejects
    copy_streams: int = 2
    batch_rows: int = 65_536
    part_rows: int = 1_048_576
    fk_validation: str = "immediate"  # or deferred: left NOT VALID for the batch's `validate` run
    target_secret_id: str | None = None
    target_url_env: str | None = None
    tables: str = ""  # validate: whose foreign keys (default all); publish: the batch's staged tables, parents first
    swap: str = "immediate"  # or deferred: the load leaves its finished staging table for the batch's publish run
    batch_tables: frozenset[str] = frozenset()  # deferred: the targets the same batch stages
    parent_grace_seconds: float = 600.0  # deferred: how long a parent may be neither staged nor loading
    staging_schema: str = "consorcio_staging"  # publish: where the batch staged its tables
    discard: bool = False  # publish: only drop the batch's staged tables (a load of the batch failed)
    schema: str = "consorcio"
    run_id: str = ""
    report_checks: bool = True
    spark: str = "auto"  # auto: the Spark path when a Spark runtime is there (Glue), on, off

    @property
    def endpoint(self) -> EndpointSettings:
        """The DMS S3 endpoint settings the raw zone was written with, as far as reading it needs them."""
        return EndpointSettings(
            {
                "BucketFolder": "" if self.raw_folder.strip("/") == "." else self.raw_folder,
                "DataFormat": self.raw_format,
                "CsvDelimiter": self.csv_delimiter,
                "CsvNullValue": self.csv_null_value,
                "AddColumnName": self.csv_header,
                "Rfc4180": self.csv_rfc4180,
            }
        )

    @property
    def lake(self) -> str:
        """--lake-uri, which every action reads."""
        return _required(self.lake_uri, "--lake-uri")

    @property
    def spec_source(self) -> str:
        """--table-spec, which a load reads."""
        return _required(self.table_spec, "--table-spec")

    def with_(self, **changes) -> JobArgs:
        from dataclasses import replace

        return replace(self, **changes)


def _required(value: str | None, flag: str) -> str:
    if not value:
        raise JobError(f"{flag} is required")
    return value


def _bool(text: str) -> bool:
    return str(text).strip().lower() in ("1", "true", "yes", "y")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="consorcio_glue", allow_abbrev=False)  # Glue adds its own --args
    p.add_argument("--action", choices=ACTIONS, default="load")
    p.add_argument("--table-spec")
    p.add_argument("--stages", default="transformed,aurora")
    p.add_argument("--lake-uri")
    p.add_argument("--raw-folder", default="raw")
    p.add_argument("--raw-format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--csv-delimiter", default=",")
    p.add_argument("--csv-null-value", default="")
    p.add_argument("--csv-header", default="false")
    p.add_argument("--csv-rfc4180", default="true")
    p.add_argument("--extra-columns", default="")
    p.add_argument("--on-invalid", choices=["fail", "reject"], default="fail")
    p.add_argument("--copy-streams", type=int, default=2)
    p.add_argument("--batch-rows", type=int, default=65_536)
    p.add_argument("--part-rows", type=int, default=1_048_576)
    p.add_argument("--fk-validation", choices=["immediate", "deferred"], default="immediate")
    p.add_argument("--target-secret-id")
    p.add_argument("--target-url-env")
    p.add_argument("--tables", default="")
    p.add_argument("--swap", choices=SWAPS, default="immediate")
    p.add_argument("--batch-tables", default="")
    p.add_argument("--parent-grace-seconds", type=float, default=600.0)
    p.add_argument("--staging-schema", default="consorcio_staging")
    p.add_argument("--discard", default="false")
    p.add_argument("--schema", default="consorcio")
    p.add_argument("--run-id", default="")
    p.add_argument("--report-checks", default="true")
    p.add_argument("--spark", choices=SPARK_MODES, default="auto")
    return p


def parse_args(argv: list[str]) -> JobArgs:
    p = _parser()
    ns, _unknown = p.parse_known_args(argv)
    stages = frozenset(s.strip() for s in ns.stages.split(",") if s.strip())
    if not stages or not stages <= STAGES:
        p.error("--stages takes transformed, aurora or both")
    return JobArgs(
        action=ns.action,
        table_spec=ns.table_spec,
        stages=stages,
        lake_uri=ns.lake_uri,
        raw_folder=ns.raw_folder,
        raw_format=ns.raw_format,
        csv_delimiter=ns.csv_delimiter,
        csv_null_value=ns.csv_null_value,
        csv_header=_bool(ns.csv_header),
        csv_rfc4180=_bool(ns.csv_rfc4180),
        extra_columns=tuple(c for c in ns.extra_columns.split(",") if c),
        on_invalid=ns.on_invalid,
        copy_streams=max(1, ns.copy_streams),
        batch_rows=ns.batch_rows,
        part_rows=ns.part_rows,
        fk_validation=ns.fk_validation,
        target_secret_id=ns.target_secret_id,
        target_url_env=ns.target_url_env,
        tables=ns.tables,
        swap=ns.swap,
        batch_tables=frozenset(t for t in ns.batch_tables.split(",") if t),
        parent_grace_seconds=ns.parent_grace_seconds,
        staging_schema=ns.staging_schema,
        discard=_bool(ns.discard),
        schema=ns.schema,
        run_id=ns.run_id,
        report_checks=_bool(ns.report_checks),
        spark=ns.spark,
    )
