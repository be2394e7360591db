"""Test helpers: raw files written the way DMS writes them, the Glue script run as a subprocess, and reads
of what landed in PostgreSQL. Kept independent of the DMS engine so these tests stand on their own."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from consorcio_assets.catalog import Catalog, Column, Table
from consorcio_assets.glue_runner.spec import spec_argument, table_spec

REPO = Path(__file__).resolve().parents[2]
#: the job as the local Glue client runs it: the installed package, no path into the repo
JOB_COMMAND = [sys.executable, "-m", "consorcio_glue"]
URL_ENV = "CONSORCIO_TEST_GLUE_TARGET_URL"


# -- values as DMS writes them -------------------------------------------------------------------------------


def offset_text(value: dt.datetime, fsp: int, extra_digit: int = 0) -> str:
    """SQL Server's DATETIMEOFFSET literal of an aware datetime: local time, `fsp` digits, ±hh:mm."""
    offset = int(value.utcoffset().total_seconds() // 60)
    sign = "-" if offset < 0 else "+"
    hh, mm = divmod(abs(offset), 60)
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value:%H:%M:%S}"
    if fsp:
        text += "." + (f"{value.microsecond:06d}{extra_digit}")[:fsp]
    return f"{text} {sign}{hh:02d}:{mm:02d}"


def dms_value(column: Column, value):
    if value is None:
        return None
    if column.family == "uuid":
        return str(value).upper()
    if column.family == "timestamptz":
        return value if isinstance(value, str) else offset_text(value, column.fsp or 0)
    if column.family == "char":
        return value.ljust(column.length)
    return value


def dms_table(table: Table, rows: list[dict]) -> pa.Table:
    """Rows (source column names → Python values) as the Arrow table DMS writes for `table`."""
    schema = table.dms_schema()
    arrays = [pa.array([dms_value(c, r.get(c.name)) for r in rows], schema.field(c.name).type) for c in table.columns]
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_text(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (bytes, bytearray)):
        return value.hex().upper()
    if isinstance(value, dt.datetime):
        return f"{value.year:04d}-{value:%m-%d %H:%M:%S}.{value.microsecond:06d}"
    if isinstance(value, dt.time):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_field(value, null: str, delimiter: str) -> str:
    """RFC 4180 as DMS writes it: quoted when needed, and when the text reads like the null marker."""
    if value is None:
        return null
    text = _csv_text(value)
    if text == null or any(ch in text for ch in ('"', "\r", "\n", delimiter)):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_raw(
    lake: Path,
    table: Table,
    data: pa.Table,
    *,
    fmt: str = "parquet",
    rows_per_file: int | None = None,
    folder: str = "raw",
    segment: str | None = None,
    null: str = "",
    delimiter: str = ",",
    header: bool = False,
) -> list[Path]:
    """DMS's layout: <folder>/<schema>/<Table>/[segment/]LOAD0000000N.<fmt>; nothing for an empty table."""
    if data.num_rows == 0:
        return []
    base = lake / folder / table.schema / table.name
    if segment:
        base = base / segment
    base.mkdir(parents=True, exist_ok=True)
    step = rows_per_file or data.num_rows
    paths = []
    for n, start in enumerate(range(0, data.num_rows, step), start=1):
        part = data.slice(start, step)
        path = base / f"LOAD{n:08X}.{fmt}"
        if fmt == "parquet":
            pq.write_table(part, path)
        else:
            lines = [delimiter.join(part.column_names)] if header else []
            for row in part.to_pylist():
                lines.append(delimiter.join(csv_field(row[c], null, delimiter) for c in part.column_names))
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        paths.append(path)
    return paths


# -- running the job -----------------------------------------------------------------------------------------


def job_command(lake: Path, table: Table, cat: Catalog, *args: str, expected_rows: int | None = None) -> list[str]:
    spec = spec_argument(table_spec(table, cat, expected_rows=expected_rows))
    return [*JOB_COMMAND, "--table-spec", spec, "--lake-uri", lake.as_uri(), "--target-url-env", URL_ENV, *args]


def job_env(pg_url: str) -> dict[str, str]:
    return {**os.environ, URL_ENV: pg_url}


def run_job(
    lake: Path,
    table: Table,
    cat: Catalog,
    pg_url: str,
    *args: str,
    expected_rows: int | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        job_command(lake, table, cat, *args, expected_rows=expected_rows),
        env=job_env(pg_url),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_of(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR: ")]
    assert lines, f"no ERROR line (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return lines[-1]


def ok(done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr[-4000:]


# -- reading PostgreSQL --------------------------------------------------------------------------------------


def fetch(pg_url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(pg_url) as conn:
        return conn.execute(query, params).fetchall()


def rows_of(pg_url: str, qualified: str, order_by: str) -> list[tuple]:
    return fetch(pg_url, f"SELECT * FROM {qualified} ORDER BY {order_by}")


def local_resources(**glue) -> dict:
    """The local mode's resources as the definitions build them (from this test's environment); `glue` overrides
    fields of the Glue resource (e.g. max_concurrent_runs)."""
    from consorcio_assets.defs.resources import resources_for

    resources = resources_for("local")
    if glue:
        current = resources["glue"]
        fields = {name: getattr(current, name) for name in type(current).model_fields}
        resources["glue"] = type(current)(**{**fields, **glue})
    return resources
