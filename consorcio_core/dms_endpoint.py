"""What AWS DMS writes to S3 and how: its file names, the S3 target endpoint's `S3Settings` and the task
settings (typed and validated), and the job arguments that tell the Glue job how the raw zone was written.

The settings files themselves live with the Dagster side (`consorcio_assets/dms/*.json`); this module reads
their content, so the job's wheel carries no project file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: DMS's documented defaults for the S3Settings the engine reads (used when the file leaves one out)
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "BucketFolder": "",
    "DataFormat": "csv",
    "ParquetVersion": "parquet-1-0",
    "EncodingType": "rle-dictionary",
    "CompressionType": "none",
    "RowGroupLength": 10024,
    "DataPageSize": 1024000,
    "DictPageSizeLimit": 1024000,
    "EnableStatistics": True,
    "ParquetTimestampInMillisecond": False,
    "MaxFileSize": 1048576,
    "CsvDelimiter": ",",
    "CsvRowDelimiter": "\n",
    "CsvNullValue": "NULL",
    "Rfc4180": True,
    "AddColumnName": False,
    "IncludeOpForFullLoad": False,
    "TimestampColumnName": "",
    "DatePartitionEnabled": False,
}
REPLACING_PREP_MODES = ("DROP_AND_CREATE", "TRUNCATE_BEFORE_LOAD")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class EndpointSettings:
    """Typed view of S3Settings; enum values are compared case-insensitively as DMS does."""

    raw: Mapping[str, Any]

    def __post_init__(self):
        if self.data_format not in ("csv", "parquet"):
            raise SettingsError(f"DataFormat must be csv or parquet, not {self.data_format!r}")
        if self.compression not in ("none", "gzip"):
            raise SettingsError(f"CompressionType must be NONE or GZIP, not {self.compression!r}")
        if self.parquet_version not in ("parquet-1-0", "parquet-2-0"):
            raise SettingsError(f"ParquetVersion must be parquet-1-0 or parquet-2-0, not {self.parquet_version!r}")
        if self.encoding_type not in ("plain", "plain-dictionary", "rle-dictionary"):
            raise SettingsError(f"EncodingType {self.encoding_type!r} is not a DMS Parquet encoding")
        if not 1 <= int(self._get("MaxFileSize")) <= 1048576:
            raise SettingsError("MaxFileSize must be between 1 and 1048576 KB")
        if int(self._get("RowGroupLength")) < 1:
            raise SettingsError("RowGroupLength must be a positive number of rows")
        if self._get("DatePartitionEnabled"):
            raise SettingsError("DatePartitionEnabled changes the folder layout; the raw zone expects it off")

    def _get(self, key: str) -> Any:
        return self.raw.get(key, ENDPOINT_DEFAULTS[key])

    def _enum(self, key: str) -> str:
        return str(self._get(key)).lower().replace("_", "-")

    @property
    def bucket_folder(self) -> str:
        return str(self._get("BucketFolder")).strip("/")

    @property
    def data_format(self) -> str:
        return self._enum("DataFormat")

    @property
    def compression(self) -> str:
        return self._enum("CompressionType")

    @property
    def parquet_version(self) -> str:
        return self._enum("ParquetVersion")

    @property
    def encoding_type(self) -> str:
        return self._enum("EncodingType")

    @property
    def extension(self) -> str:
        """File suffix DMS uses: gzip compresses Parquet pages inside the file but a CSV file as a whole."""
        if self.data_format == "parquet":
            return ".parquet"
        return ".csv.gz" if self.compression == "gzip" else ".csv"

    @property
    def row_group_length(self) -> int:
        return int(self._get("RowGroupLength"))

    @property
    def data_page_size(self) -> int:
        return int(self._get("DataPageSize"))

    @property
    def dict_page_size_limit(self) -> int:
        return int(self._get("DictPageSizeLimit"))

    @property
    def enable_statistics(self) -> bool:
        return bool(self._get("EnableStatistics"))

    @property
    def timestamp_ms(self) -> bool:
        """ParquetTimestampInMillisecond: only Parquet files change; CSV always carries microseconds."""
        return bool(self._get("ParquetTimestampInMillisecond")) and self.data_format == "parquet"

    @property
    def max_file_bytes(self) -> int:
        return int(self._get("MaxFileSize")) * 1024

    @property
    def csv_delimiter(self) -> str:
        return str(self._get("CsvDelimiter"))

    @property
    def csv_row_delimiter(self) -> str:
        return str(self._get("CsvRowDelimiter"))

    @property
    def csv_null_value(self) -> str:
        return str(self._get("CsvNullValue"))

    @property
    def rfc4180(self) -> bool:
        return bool(self._get("Rfc4180"))

    @property
    def add_column_name(self) -> bool:
        return bool(self._get("AddColumnName"))

    @property
    def include_op(self) -> bool:
        """IncludeOpForFullLoad writes the `I` column in CSV files only."""
        return bool(self._get("IncludeOpForFullLoad")) and self.data_format == "csv"

    @property
    def timestamp_column(self) -> str:
        return str(self._get("TimestampColumnName") or "")

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """The columns DMS writes before the table's, in file order: `Op`, then `TimestampColumnName`."""
        return (("Op",) if self.include_op else ()) + ((self.timestamp_column,) if self.timestamp_column else ())

    def require_readable_csv(self) -> None:
        """CSV files are read back (checks, Glue job) with a one-character delimiter and newline rows only."""
        if self.csv_row_delimiter not in ("\n", "\r\n") or len(self.csv_delimiter) != 1:
            raise SettingsError("reading DMS CSV needs a one-character CsvDelimiter and a newline CsvRowDelimiter")


@dataclass(frozen=True)
class TaskSettings:
    raw: Mapping[str, Any]

    def __post_init__(self):
        meta = self.raw.get("TargetMetadata", {})
        if meta.get("FullLobMode"):
            raise SettingsError("FullLobMode is not supported by DMS for S3 targets: use LimitedSizeLobMode")
        if not (meta.get("SupportLobs", True) and meta.get("LimitedSizeLobMode", True)):
            raise SettingsError("SupportLobs and LimitedSizeLobMode must be on, or DMS drops the LOB columns")
        if self.lob_max_size_kb < 1:
            raise SettingsError("LobMaxSize must be a positive number of KB")
        if self.target_table_prep_mode not in REPLACING_PREP_MODES:
            raise SettingsError(
                f"TargetTablePrepMode must be one of {REPLACING_PREP_MODES}: "
                f"{self.target_table_prep_mode} would mix two loads' files"
            )

    @property
    def lob_max_size_kb(self) -> int:
        return int(self.raw.get("TargetMetadata", {}).get("LobMaxSize", 32))

    @property
    def lob_max_bytes(self) -> int:
        return self.lob_max_size_kb * 1024

    @property
    def max_full_load_subtasks(self) -> int:
        return max(1, min(49, int(self.raw.get("FullLoadSettings", {}).get("MaxFullLoadSubTasks", 8))))

    @property
    def target_table_prep_mode(self) -> str:
        return str(self.raw.get("FullLoadSettings", {}).get("TargetTablePrepMode", "DROP_AND_CREATE")).upper()


def raw_arguments(endpoint: EndpointSettings) -> dict[str, str]:
    """Job arguments that tell the job how DMS wrote the raw zone (`consorcio_glue.args` reads them back)."""
    if endpoint.data_format == "csv":
        endpoint.require_readable_csv()
    args = {
        "--raw-folder": endpoint.bucket_folder or ".",
        "--raw-format": endpoint.data_format,
        "--csv-delimiter": endpoint.csv_delimiter,
        "--csv-header": "true" if endpoint.add_column_name else "false",
    }
    if endpoint.csv_null_value:
        args["--csv-null-value"] = endpoint.csv_null_value  # Glue drops empty values; "" is the job's default
    if not endpoint.rfc4180:
        args["--csv-rfc4180"] = "false"
    if endpoint.extra_columns:
        args["--extra-columns"] = ",".join(endpoint.extra_columns)
    return args
