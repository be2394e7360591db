"""The catalog: the contract DDL parsed into tables, views, columns, keys and the type mapping.

Everything downstream (DMS mappings, Glue transforms, Aurora DDL, assets, checks, docs) reads it.
"""

from functools import lru_cache

from .model import Catalog, Check, Column, ForeignKey, Index, Table
from .naming import SNAPSHOT_SCHEMA, TARGET_SCHEMA, snake_case
from .parser import ContractError, load_catalog, parse_contract
from .types import TYPE_RULES, TypeRule, UnsupportedTypeError


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
