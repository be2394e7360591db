"""DMS table mappings generated from the catalog, and their reading back by the local engine.

Selection rules name every table (`"table-type": "table"`) and view (`"table-type": "view"`) exactly, with
`load-order` from the catalog's foreign keys (DMS initialises higher numbers first, so parents get the highest).
The large tables get a `table-settings` rule with `parallel-load` `ranges` on the leading primary-key column and
`segment-names`, so DMS writes each segment to its own sub-folder: raw/dbo/<Table>/<segment>/LOAD00000001.parquet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.catalog import catalog as default_catalog
from consorcio_assets.source.queries import table_clause

#: tables DMS splits into parallel-load segments, and how many segments each gets
PARALLEL_LOAD_SEGMENTS: dict[str, int] = {"Simulacao": 4, "SimulacaoParcela": 4, "vw_SimulacaoResumo": 2}


def locator(name: str) -> str:
    """A name as a DMS object-locator pattern: `_` is a one-character wildcard there, `[_]` a literal one."""
    return re.sub(r"([_%\[])", r"[\1]", name)


def load_orders(catalog: Catalog) -> dict[str, int]:
    order = catalog.load_order()
    return {t.name: len(order) - i for i, t in enumerate(order)}


def segment_names(count: int) -> list[str]:
    return [f"SEGMENT{i}" for i in range(1, count + 1)]


def range_columns(table: Table) -> list[str]:
    """Segments are cut on the leading primary-key column: indexed, never null, and identity-like here."""
    return [table.primary_key[0]]


def _selection_rule(rule_id: int, table: Table, load_order: int) -> dict:
    return {
        "rule-type": "selection",
        "rule-id": str(rule_id),
        "rule-name": f"include-{table.schema}-{table.name}",
        "object-locator": {
            "schema-name": locator(table.schema),
            "table-name": locator(table.name),
            "table-type": table.kind,
        },
        "rule-action": "include",
        "load-order": str(load_order),
    }


def _parallel_load_rule(rule_id: int, table: Table, boundaries: Sequence[Sequence[str]]) -> dict:
    return {
        "rule-type": "table-settings",
        "rule-id": str(rule_id),
        "rule-name": f"parallel-load-{table.schema}-{table.name}",
        "object-locator": {"schema-name": table.schema, "table-name": table.name},
        "parallel-load": {
            "type": "ranges",
            "columns": range_columns(table),
            "boundaries": [[str(v) for v in b] for b in boundaries],
            "segment-names": segment_names(len(boundaries) + 1),
        },
    }


def table_mappings(
    tables: Iterable[Table],
    boundaries: Mapping[str, Sequence[Sequence[str]]] | None = None,
    catalog: Catalog | None = None,
) -> dict:
    """The TableMappings document for `tables` (any subset of the catalog), in load order.

    `boundaries` maps a table name to its parallel-load segment upper bounds (see `segment_boundaries`);
    a table without boundaries (or with none, e.g. when it is empty) is loaded as one segment.
    """
    catalog = catalog or default_catalog()
    orders = load_orders(catalog)
    chosen = sorted({t.name: t for t in tables}.values(), key=lambda t: -orders[t.name])
    rules = [_selection_rule(i, t, orders[t.name]) for i, t in enumerate(chosen, start=1)]
    for t in chosen:
        bounds = (boundaries or {}).get(t.name)
        if bounds:
            rules.append(_parallel_load_rule(len(rules) + 1, t, bounds))
    return {"rules": rules}


def bounds_query(table: Table) -> sa.Select:
    """MIN and MAX of the leading range column (what the parallel-load segments divide)."""
    column = table.column(range_columns(table)[0])
    t = table_clause(table)
    return sa.select(sa.func.min(t.c[column.name]), sa.func.max(t.c[column.name]))


def segment_boundaries(conn: sa.Connection, table: Table, segments: int) -> list[list[str]]:
    """Upper bounds cutting the leading key's [min, max] into `segments` even ranges ([] for an empty table)."""
    column = table.column(range_columns(table)[0])
    if column.family != "int" or segments < 2:
        return []
    low, high = conn.execute(bounds_query(table)).one()
    if low is None or high <= low:
        return []
    step = (high - low + 1) / segments
    cuts = sorted({low + round(step * k) for k in range(1, segments)} - {low})
    return [[str(c)] for c in cuts if c <= high]


# -- reading a mapping back (the local engine obeys the same document DMS gets) --------------------------------


def _pattern_regex(pattern: str) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "[":
            end = pattern.index("]", i + 1)
            out.append(f"[{re.escape(pattern[i + 1 : end])}]")
            i = end + 1
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE)


@dataclass(frozen=True)
class Selected:
    table: Table
    load_order: int
    parallel_load: Mapping | None


def selected_tables(mappings: Mapping, catalog: Catalog | None = None) -> list[Selected]:
    """The catalog tables and views a TableMappings document selects, highest load-order first."""
    catalog = catalog or default_catalog()
    rules = mappings.get("rules", [])
    chosen: dict[str, int] = {}
    for rule in rules:
        if rule.get("rule-type") != "selection":
            continue
        loc = rule["object-locator"]
        kinds = {"all": ("table", "view"), "view": ("view",)}.get(loc.get("table-type", "table"), ("table",))
        schema, name = _pattern_regex(loc["schema-name"]), _pattern_regex(loc["table-name"])
        for t in catalog:
            if t.kind in kinds and schema.match(t.schema) and name.match(t.name):
                if rule["rule-action"] == "exclude":
                    chosen.pop(t.name, None)
                else:
                    chosen[t.name] = int(rule.get("load-order", 0))
    parallel = {
        (r["object-locator"]["schema-name"], r["object-locator"]["table-name"]): r["parallel-load"]
        for r in rules
        if r.get("rule-type") == "table-settings" and "parallel-load" in r
    }
    picked = [Selected(catalog[n], o, parallel.get((catalog[n].schema, n))) for n, o in chosen.items()]
    return sorted(picked, key=lambda s: -s.load_order)


def _typed(table: Table, column: str, value: str):
    family = table.column(column).family
    return int(value) if family == "int" else Decimal(value) if family == "decimal" else value


def _below(table: Table, clause: sa.TableClause, columns: Sequence[str], bound: Sequence[str]):
    """DMS's WHERE for "below this boundary": (c1 < v1) OR (c1 = v1 AND c2 < v2) OR ..."""
    terms = []
    for j, col in enumerate(columns):
        equal = [clause.c[c] == _typed(table, c, bound[i]) for i, c in enumerate(columns[:j])]
        terms.append(sa.and_(*equal, clause.c[col] < _typed(table, col, bound[j])))
    return sa.or_(*terms)


def segment_predicates(
    table: Table,
    parallel_load: Mapping,
    clause: sa.TableClause | None = None,
) -> list[tuple[str | None, sa.ColumnElement]]:
    """(segment name, WHERE on `clause`) for each range segment, as the DMS replication instance builds them."""
    clause = table_clause(table) if clause is None else clause
    columns, bounds = parallel_load["columns"], parallel_load["boundaries"]
    below = [_below(table, clause, columns, b) for b in bounds]
    wheres = [below[0]] + [sa.and_(sa.not_(below[i - 1]), below[i]) for i in range(1, len(below))]
    wheres.append(sa.not_(below[-1]))
    names = parallel_load.get("segment-names") or [None] * len(wheres)
    if len(names) != len(wheres):
        raise ValueError(f"{table.qualified_source}: {len(names)} segment-names for {len(wheres)} segments")
    return list(zip(names, wheres))
