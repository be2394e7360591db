"""The Arrow side of the type-mapping table (`consorcio_assets.catalog.types`): which Arrow type DMS writes for
a rule's arrow name, and which Arrow type the transformed zone holds for a type family. Data, not if-chains."""

from __future__ import annotations

import pyarrow as pa

#: a rule's arrow name (other than decimal128(p,s)) → the Arrow type DMS writes to Parquet
ARROW_FACTORIES = {
    "bool": pa.bool_,
    "uint8": pa.uint8,
    "int16": pa.int16,
    "int32": pa.int32,
    "int64": pa.int64,
    "float32": pa.float32,
    "float64": pa.float64,
    "date32": pa.date32,
    "string": pa.string,
    "binary": pa.binary,
    "time64[us]": lambda: pa.time64("us"),
    "timestamp[us]": lambda: pa.timestamp("us"),
}

#: (family, DMS arrow name or None for any) → the Arrow type the target column holds, where it differs from DMS's
TARGET_OVERRIDES = {
    ("uuid", None): pa.uuid,  # GUID text → 16 bytes
    ("timestamptz", None): lambda: pa.timestamp("us", tz="UTC"),  # DATETIMEOFFSET text → the UTC instant
    ("int", "uint8"): pa.int16,  # tinyint: PostgreSQL has no unsigned byte
}


def arrow_type(name: str, *, p=None, s=None, ms: bool = False) -> pa.DataType:
    """Arrow type for a rule's arrow template (`ms` for DMS's ParquetTimestampInMillisecond)."""
    if name.startswith("decimal128"):
        return pa.decimal128(p, s)
    if name == "timestamp[us]" and ms:
        return pa.timestamp("ms")
    return ARROW_FACTORIES[name]()


def target_arrow_type(family: str, name: str, *, p=None, s=None) -> pa.DataType:
    """The Arrow type of a column in the transformed zone: what its PostgreSQL column holds."""
    factory = TARGET_OVERRIDES.get((family, None)) or TARGET_OVERRIDES.get((family, name))
    return factory() if factory else arrow_type(name, p=p, s=s)
