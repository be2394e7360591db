"""The one DMS CSV reader (`consorcio_core.dms_csv`): the raw-zone checks and the Glue job read the engine's CSV
files to the same values, every parsing rule follows the endpoint settings, and what it refuses is named by row
and column, never by value."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from consorcio_assets.catalog import catalog
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms.engine import csv_header, csv_lines
from consorcio_assets.dms.layout import file_facts, read_csv_batches
from consorcio_assets.glue_runner.local_client import argv_of
from consorcio_assets.glue_runner.spec import spec_argument, table_spec
from consorcio_assets_tests.dms.data import sort_rows
from consorcio_assets_tests.dms.test_engine import ALL, csv_settings, run
from consorcio_core.dms_csv import CsvHeaderError, read_typed, text_batches
from consorcio_core.dms_endpoint import EndpointSettings, SettingsError, raw_arguments
from consorcio_core.lake import LakeFiles
from consorcio_glue.args import parse_args
from consorcio_glue.raw import RawRejects, raw_files, read_csv
from consorcio_glue.spec import Spec, load_spec

CAT = catalog()
FS = pafs.LocalFileSystem()
VARIANTS = {
    "rfc4180": {},
    "header-op-timestamp-gzip": dict(
        AddColumnName=True,
        IncludeOpForFullLoad=True,
        TimestampColumnName="ts",
        CsvDelimiter=";",
        CsvNullValue="NULL",
        CompressionType="GZIP",
    ),
}


def _checks_side(lake: Lake, endpoint: EndpointSettings, name: str) -> list[dict]:
    """What the raw-zone checks read (`read_csv_batches`), without DMS's extra columns."""
    table = CAT[name]
    fs, root = lake.filesystem()
    prefix = Path(root, endpoint.bucket_folder, table.schema, table.name)
    rows = []
    for path in sorted(prefix.rglob("LOAD*")):
        for batch in read_csv_batches(fs, str(path), table, endpoint):
            rows += batch.select([c.name for c in table.columns]).to_pylist()
    return sort_rows(rows, name)


def _job_side(lake: Lake, endpoint: EndpointSettings, name: str) -> list[dict]:
    """What the Glue job reads (`consorcio_glue.raw.read_csv`), with the arguments the resource passes it."""
    spec = Spec(load_spec(spec_argument(table_spec(CAT[name], CAT))))
    args = parse_args(argv_of(raw_arguments(endpoint)))
    files, rows = LakeFiles.at(lake.uri), []
    for info in raw_files(files, args, spec):
        for raw in read_csv(files, info, spec, args, RawRejects()):
            flags = [n for n in raw.batch.schema.names if n.startswith("__invalid__")]
            assert not any(any(raw.batch.column(f).to_pylist()) for f in flags), (name, flags)
            rows += raw.batch.select([c.source for c in spec.columns]).to_pylist()
    return sort_rows(rows, name)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_checks_and_the_glue_job_read_the_same_values(hand_made_source, lake, variant):
    settings = csv_settings(**VARIANTS[variant])
    run(lake, hand_made_source, settings=settings)
    for name in ALL:
        checks = _checks_side(lake, settings.endpoint, name)
        assert checks and checks == _job_side(lake, settings.endpoint, name), name


def _write(tmp_path: Path, endpoint: EndpointSettings, batch: pa.RecordBatch, header: bool) -> str:
    text = (csv_header(batch.schema.names, endpoint) if header else b"") + "".join(
        csv_lines(batch, endpoint).to_pylist()
    ).encode()
    path = tmp_path / ("LOAD00000001.csv.gz" if endpoint.compression == "gzip" else "LOAD00000001.csv")
    path.write_bytes(gzip.compress(text) if endpoint.compression == "gzip" else text)
    return str(path)


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@hsettings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(st.none() | _TEXT, st.none() | _TEXT), min_size=1, max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    null=st.sampled_from(["", "NULL"]),
    header=st.booleans(),
    compression=st.sampled_from(["NONE", "GZIP"]),
)
def test_what_the_engine_writes_the_reader_reads_back(tmp_path_factory, rows, delimiter, null, header, compression):
    """Quotes, delimiters, line breaks, the null marker as text and the empty string all survive the round trip."""
    endpoint = EndpointSettings(
        {
            "DataFormat": "csv",
            "CsvDelimiter": delimiter,
            "CsvNullValue": null,
            "AddColumnName": header,
            "CompressionType": compression,
        }
    )
    batch = pa.RecordBatch.from_pylist(
        [{"a": a, "b": b} for a, b in rows], schema=pa.schema([("a", pa.string()), ("b", pa.string())])
    )
    path = _write(tmp_path_factory.mktemp("csv"), endpoint, batch, header)
    read = [b.to_pylist() for b in text_batches(FS, path, endpoint, ["a", "b"])]
    assert [r for part in read for r in part] == batch.to_pylist()


def test_without_rfc4180_a_double_quote_is_text(tmp_path):
    endpoint = EndpointSettings({"DataFormat": "csv", "Rfc4180": False, "CsvNullValue": "NULL"})
    path = tmp_path / "LOAD00000001.csv"
    path.write_text('1,"quoted" text\n2,NULL\n')
    rows = [r for b in text_batches(FS, str(path), endpoint, ["k", "v"]) for r in b.to_pylist()]
    assert rows == [{"k": "1", "v": '"quoted" text'}, {"k": "2", "v": None}]


def test_a_header_must_name_the_expected_columns_and_is_never_quoted(tmp_path):
    """A file written without its header (AddColumnName on) starts with a data row: its values stay out."""
    endpoint = EndpointSettings({"DataFormat": "csv", "AddColumnName": True})
    path = tmp_path / "LOAD00000001.csv"
    path.write_text("12345678901,Maria da Silva\n")
    with pytest.raises(CsvHeaderError) as err:
        list(text_batches(FS, str(path), endpoint, ["Cpf", "Nome"]))
    assert "Maria" not in str(err.value) and "12345678901" not in str(err.value) and "Cpf" in str(err.value)


def test_a_bad_row_or_value_is_named_by_row_and_column_never_by_value(tmp_path):
    endpoint = EndpointSettings({"DataFormat": "csv"})
    schema = pa.schema([("Id", pa.int32()), ("Nome", pa.string())])
    path = tmp_path / "LOAD00000001.csv"
    path.write_text("1,Ana\n2,Maria da Silva,extra\n")
    with pytest.raises(ValueError, match="row: 3 fields where 2 were expected") as err:
        list(read_typed(FS, str(path), endpoint, schema))
    assert "Maria" not in str(err.value)
    path.write_text("1,Ana\nx9,Maria\n")
    with pytest.raises(ValueError, match=r"1 value.* of column Id do not parse as int32") as err:
        list(read_typed(FS, str(path), endpoint, schema))
    assert "x9" not in str(err.value)


def test_the_checks_report_a_bad_file_by_path_without_values(tmp_path):
    table = CAT["Grupo"]
    endpoint = EndpointSettings({"DataFormat": "csv"})
    path = tmp_path / "raw" / "LOAD00000001.csv"
    path.parent.mkdir()
    path.write_text("1,1,G0001,quinhentas,2021-05-01,15,A\n")
    facts = file_facts(FS, str(tmp_path), "raw/LOAD00000001.csv", table, endpoint)
    assert facts.schema is None and facts.error.startswith("raw/LOAD00000001.csv: ")
    assert "QuantidadeCotas" in facts.error and "quinhentas" not in facts.error


def test_settings_the_reader_cannot_follow_are_refused_before_reading(tmp_path):
    endpoint = EndpointSettings({"DataFormat": "csv", "CsvRowDelimiter": "|\n"})
    with pytest.raises(SettingsError, match="CsvRowDelimiter"):
        list(text_batches(FS, str(tmp_path / "absent.csv"), endpoint, ["a"]))
    with pytest.raises(SettingsError, match="CsvDelimiter"):
        raw_arguments(EndpointSettings({"DataFormat": "csv", "CsvDelimiter": "::"}))


@hsettings(max_examples=80, deadline=None)
@given(
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    null=st.sampled_from(["", "NULL", "\\N"]),
    header=st.booleans(),
    rfc4180=st.booleans(),
    folder=st.sampled_from(["", "raw", "/lake/raw/"]),
    op=st.booleans(),
    stamp=st.sampled_from(["", "ts"]),
)
def test_the_job_reads_with_the_endpoint_settings_the_resource_passes_it(
    delimiter, null, header, rfc4180, folder, op, stamp
):
    """Job arguments carry every reading rule: the job's endpoint settings read CSV as the resource's do."""
    endpoint = EndpointSettings(
        {
            "DataFormat": "csv",
            "CsvDelimiter": delimiter,
            "CsvNullValue": null,
            "AddColumnName": header,
            "Rfc4180": rfc4180,
            "BucketFolder": folder,
            "IncludeOpForFullLoad": op,
            "TimestampColumnName": stamp,
        }
    )
    args = parse_args(argv_of(raw_arguments(endpoint)))
    rules = (
        "data_format",
        "csv_delimiter",
        "csv_null_value",
        "add_column_name",
        "rfc4180",
        "csv_row_delimiter",
        "bucket_folder",
    )
    assert {r: getattr(args.endpoint, r) for r in rules} == {r: getattr(endpoint, r) for r in rules}
    assert args.extra_columns == endpoint.extra_columns
