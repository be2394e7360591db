"""The catalog: the contract DDL parsed into tables, views, columns, keys and the type mapping.

Everything downstream (DMS mappings, Glue transforms, Aurora DDL, assets, checks, docs) reads it.
"""

from functools import lru_cache

from consorcio_assets.catalog.model import Catalog, Check, Column, ForeignKey, Index, Table
from consorcio_assets.catalog.naming import SNAPSHOT_SCHEMA, TARGET_SCHEMA, snake_case
from consorcio_assets.catalog.parser import ContractError, load_catalog, parse_contract
from consorcio_assets.catalog.types import TYPE_RULES, TypeRule, UnsupportedTypeError


@lru_cache(maxsize=1)
def catalog() -> Catalog:
    """The packaged contract's catalog (parsed once per process)."""
    return load_catalog()


__all__ = [
    "SNAPSHOT_SCHEMA",
    "TARGET_SCHEMA",
    "TYPE_RULES",
    "Catalog",
    "Check",
    "Column",
    "ContractError",
    "ForeignKey",
    "Index",
    "Table",
    "TypeRule",
    "UnsupportedTypeError",
    "catalog",
    "load_catalog",
    "parse_contract",
    "snake_case",
]
