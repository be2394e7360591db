"""What a view's columns are, inferred from its SELECT with SQL Server's typing rules.

DMS full-loads a view as if it were a table, so the catalog needs each view column's type,
nullability and a key (the driving table's key, or the GROUP BY columns) just as for tables.
"""

from __future__ import annotations

from dataclasses import replace

from sqlglot import exp

from consorcio_assets.catalog.model import Column, Table
from consorcio_assets.catalog.types import lookup


def infer_view(where: str, select: exp.Select, tables: dict[str, Table]):
    scope, nullable_aliases, driving = _scope(select, tables)
    columns = []
    for projection in select.expressions:
        name = projection.alias_or_name
        column = _infer(projection.unalias(), scope, nullable_aliases, f"{where}.{name}")
        columns.append(
            replace(
                column,
                name=name,
                identity=False,
                computed=None,
                comment=None,
                default=None,
                postgres_default=None,
                postgres_computed=None,
            )
        )
    names = [c.name for c in columns]
    group = select.args.get("group")
    if group:
        exprs = [e.sql("tsql") for e in group.expressions]
        key = tuple(p.alias_or_name for p in select.expressions if p.unalias().sql("tsql") in exprs)
    else:
        key = tuple(_output_name(select, driving, k) for k in driving.primary_key)
    if not key or any(k is None or k not in names for k in key):
        raise ValueError("cannot derive a key (project the driving table's primary key or GROUP BY)")
    columns = [replace(c, nullable=False) if c.name in key else c for c in columns]
    depends_on = tuple(dict.fromkeys(t.name for t in scope.values()))
    return columns, key, depends_on


def _scope(select: exp.Select, tables: dict[str, Table]):
    from_ = select.args.get("from_") or select.args.get("from")
    scope: dict[str, Table] = {}
    nullable: set[str] = set()

    def add(node: exp.Table) -> str:
        if node.name not in tables:
            raise KeyError(f"reads unknown table {node.name}")
        alias = node.alias_or_name
        scope[alias] = tables[node.name]
        return alias

    driving = scope_alias = add(from_.this)
    for join in select.args.get("joins") or []:
        alias = add(join.this)
        if (join.side or "").upper() in ("LEFT", "FULL"):
            nullable.add(alias)
        if (join.side or "").upper() in ("RIGHT", "FULL"):
            nullable.add(scope_alias)
    return scope, nullable, scope[driving]


def _output_name(select: exp.Select, table: Table, column: str) -> str | None:
    for p in select.expressions:
        inner = p.unalias()
        if isinstance(inner, exp.Column) and inner.name == column:
            return p.alias_or_name
    return None


def _synthetic(sql_type: str, where: str, nullable: bool, **params) -> Column:
    rule = lookup(sql_type, where)
    return Column(name="", sql_type=rule.sqlserver, rule=rule, nullable=nullable, **params)


def _infer(node: exp.Expression, scope, nullable_aliases, where: str) -> Column:
    def infer(n):
        return _infer(n, scope, nullable_aliases, where)

    if isinstance(node, exp.Paren):
        return infer(node.this)
    if isinstance(node, exp.Column):
        candidates = [a for a, t in scope.items() if (node.table in ("", a)) and node.name in t.column_map]
        if len(candidates) != 1:
            raise ValueError(f"column {node.sql('tsql')} is unknown or ambiguous")
        column = scope[candidates[0]].column(node.name)
        return replace(column, nullable=column.nullable or candidates[0] in nullable_aliases)
    if isinstance(node, (exp.Add, exp.Sub)):
        a, b = infer(node.this), infer(node.expression)
        if a.family == b.family == "decimal":
            s = max(a.scale, b.scale)
            p = min(38, max(a.precision - a.scale, b.precision - b.scale) + s + 1)
            return _synthetic("decimal", where, a.nullable or b.nullable, precision=p, scale=s)
        return replace(a, nullable=a.nullable or b.nullable)
    if isinstance(node, exp.Coalesce):
        args = [infer(node.this)] + [infer(e) for e in node.expressions]
        return replace(args[0], nullable=all(a.nullable for a in args))
    if isinstance(node, exp.If):
        a, b = infer(node.args["true"]), infer(node.args["false"])
        if a.family in ("char", "text") and b.family in ("char", "text"):
            return replace(a, length=max(a.length or 1, b.length or 1), nullable=a.nullable or b.nullable)
        return replace(a, nullable=a.nullable or b.nullable)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return _synthetic("varchar", where, False, length=max(1, len(node.this)))
        return _synthetic("int", where, False)
    if isinstance(node, exp.Cast):
        inner = infer(node.this)
        target = _synthetic_from_type(node.to, where, inner.nullable)
        return target
    if isinstance(node, exp.DateFromParts):
        return _synthetic(
            "date", where, any(infer(a).nullable for a in node.args.values() if isinstance(a, exp.Expression))
        )
    if isinstance(node, exp.TsOrDsToDate):  # sqlglot's implicit date coercion inside YEAR()/MONTH()
        return infer(node.this)
    if isinstance(node, (exp.Year, exp.Month, exp.Day)):
        return _synthetic("int", where, infer(node.this).nullable)
    if isinstance(node, exp.Count):
        return _synthetic("bigint", where, False)
    if isinstance(node, exp.Sum):
        arg = infer(node.this)
        if arg.family == "decimal":
            return _synthetic("decimal", where, arg.nullable, precision=38, scale=arg.scale)
        if arg.sql_type == "bigint":
            return _synthetic("bigint", where, arg.nullable)
        return _synthetic("int", where, arg.nullable)
    if isinstance(node, (exp.Min, exp.Max)):
        return infer(node.this)
    raise ValueError(f"cannot infer the type of {node.sql('tsql')!r}; add a CAST in the view")


def _synthetic_from_type(dtype: exp.DataType, where: str, nullable: bool) -> Column:
    from consorcio_assets.catalog.parser import _parse_type, _type_params  # shared type reading

    sql_type, args = _parse_type(dtype.sql(dialect="tsql"), where)
    rule = lookup(sql_type, where)
    return Column(
        name="", sql_type=rule.sqlserver, rule=rule, nullable=nullable, **_type_params(rule.sqlserver, args, where)
    )


def transpile_view(
    view: Table,
    tables: dict[str, Table],
    dialect: str,
    *,
    table_sql,
    column_name=lambda c: c,
    local_timestamp=None,
    cast_type=None,
) -> str:
    """The view's SELECT in another dialect.

    `table_sql(Table)` names each base table; `column_name` renames columns; `local_timestamp(sql)` turns a
    DATETIMEOFFSET column into its local wall-clock timestamp where it is used inside an expression (SQL Server's
    YEAR()/CAST AS DATE read the local time); `cast_type(Column)` pins each output column to the catalog's type.
    """
    import sqlglot

    select = sqlglot.parse_one(view.view_sql, read="tsql")
    scope, _, _ = _scope(select, tables)
    for node in list(select.find_all(exp.Column)):
        owner = scope.get(node.table) if node.table else None
        col = owner.column_map.get(node.name) if owner else None
        node.set("this", exp.to_identifier(column_name(node.name)))
        parent = node.parent
        if (
            col is not None
            and col.family == "timestamptz"
            and local_timestamp
            and not isinstance(parent, (exp.Alias, exp.Select))
        ):
            node.replace(sqlglot.parse_one(local_timestamp(node.sql(dialect=dialect)), read=dialect))
    for node in list(select.find_all(exp.Table)):
        renamed = exp.to_table(table_sql(tables[node.name]), dialect=dialect)
        renamed.set("alias", node.args.get("alias"))
        node.replace(renamed)
    projections = []
    for p, column in zip(select.expressions, view.columns):
        inner = p.unalias().copy()
        if cast_type:
            inner = exp.Cast(this=inner, to=exp.DataType.build(cast_type(column), dialect=dialect))
        projections.append(exp.alias_(inner, column_name(column.name), quoted=True))
    select.set("expressions", projections)
    return select.sql(dialect=dialect)
