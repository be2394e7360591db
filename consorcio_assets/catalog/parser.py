"""Parse the SQL Server schema script (T-SQL, as SSMS exports it) into the catalog with sqlglot."""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
from sqlglot import exp

from consorcio_assets.catalog.collations import collation_rule
from consorcio_assets.catalog.computed import UntranslatableExpressionError, translate_computed
from consorcio_assets.catalog.defaults import UntranslatableDefaultError, translate_default
from consorcio_assets.catalog.model import Catalog, Check, Column, ForeignKey, Index, Table
from consorcio_assets.catalog.types import lookup
from consorcio_assets.catalog.views import infer_view

_GO = re.compile(r"^\s*GO\s*$", re.MULTILINE | re.IGNORECASE)
_TYPE = re.compile(r"^(\w+)(?:\((.*)\))?$")
_PII_LINE = re.compile(r"^- Customer PII: (.+)$", re.MULTILINE)
_PII_TABLE = re.compile(r"\(`dbo\.(\w+)`\)")


class ContractError(ValueError):
    """The contract has something the migration cannot handle; the message names the object."""


def parse_contract(sql: str, business_rules: str | None = None) -> Catalog:
    pii = _pii_columns(business_rules or "")
    tables: dict[str, Table] = {}
    indexes: dict[str, list[Index]] = {}
    for statement in _statements(sql):
        try:
            tree = sqlglot.parse_one(statement, read="tsql")
        except sqlglot.errors.ParseError as err:
            raise ContractError(f"cannot parse statement: {statement.strip()[:120]!r}: {err}") from err
        if not isinstance(tree, exp.Create):
            raise ContractError(f"unexpected statement in contract: {statement.strip()[:120]!r}")
        kind = (tree.args.get("kind") or "").upper()
        if kind == "TABLE":
            table = _table(tree, pii, statement)
            tables[table.name] = table
        elif kind == "INDEX":
            table_name, index = _index(tree)
            indexes.setdefault(table_name, []).append(index)
        elif kind == "VIEW":
            view = _view(tree, statement, tables)
            tables[view.name] = view
        else:
            raise ContractError(f"unsupported CREATE {kind} in contract: {statement.strip()[:80]!r}")
    for table_name, idx in indexes.items():
        if table_name not in tables:
            raise ContractError(f"index {idx[0].name} on unknown table dbo.{table_name}")
        t = tables[table_name]
        tables[table_name] = _replace(t, indexes=tuple(idx))
    catalog = Catalog(tuple(tables.values()))
    _validate_references(catalog)
    return catalog


def _statements(sql: str) -> list[str]:
    return [s for s in _GO.split(sql) if s.strip() and not _only_comments(s)]


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())


def _pii_columns(rules: str) -> dict[str, set[str]]:
    """`- Customer PII: CpfCnpj, Nome, ...` in the section about `dbo.Cliente`."""
    out: dict[str, set[str]] = {}
    for match in _PII_LINE.finditer(rules):
        heading = rules.rfind("\n## ", 0, match.start())
        table = _PII_TABLE.search(rules[heading : match.start()]) if heading >= 0 else None
        if table:
            names = [n.strip(" .`") for n in match.group(1).split(",")]
            out.setdefault(table.group(1), set()).update(names)
    return out


def _name_of(table: exp.Table) -> tuple[str, str]:
    return (table.db or "dbo"), table.name


def _table(tree: exp.Create, pii: dict[str, set[str]], statement: str) -> Table:
    schema_node = tree.this
    schema, name = _name_of(schema_node.this)
    where = f"{schema}.{name}"
    columns: list[Column] = []
    pk: tuple[str, ...] = ()
    pk_name = None
    uniques: list[tuple[str, tuple[str, ...]]] = []
    fks: list[ForeignKey] = []
    checks: list[Check] = []
    for node in schema_node.expressions:
        if isinstance(node, exp.ColumnDef):
            column, col_pk, col_uq, col_fk, col_ck = _column(node, where, pii.get(name, set()), statement)
            columns.append(column)
            if col_pk:
                pk, pk_name = (column.name,), col_pk
            if col_uq:
                uniques.append((col_uq, (column.name,)))
            fks.extend(col_fk)
            checks.extend(col_ck)
        elif isinstance(node, exp.Constraint):
            cname = node.name
            for kind in node.expressions:
                if isinstance(kind, exp.PrimaryKey):
                    pk, pk_name = _ordered_names(kind.expressions), cname
                elif isinstance(kind, exp.UniqueColumnConstraint):
                    uniques.append((cname, _ordered_names(kind.this.expressions if kind.this else [])))
                elif isinstance(kind, exp.CheckColumnConstraint):
                    checks.append(Check(cname, kind.this.sql(dialect="tsql")))
                elif isinstance(kind, exp.ForeignKey):
                    ref = kind.args["reference"].this
                    fks.append(
                        ForeignKey(
                            cname,
                            tuple(e.name for e in kind.expressions),
                            ref.this.name,
                            tuple(e.name for e in ref.expressions),
                        )
                    )
                else:
                    raise ContractError(f"{where}: unsupported constraint {cname}: {kind.sql('tsql')}")
        else:
            raise ContractError(f"{where}: unsupported table element {node.sql('tsql')!r}")
    if not pk:
        raise ContractError(f"table {where} has no primary key: the migration needs one to reconcile rows")
    known = {c.name for c in columns}
    for cname, cols in [(pk_name, pk)] + uniques + [(f.name, f.columns) for f in fks]:
        for c in cols:
            if c not in known:
                raise ContractError(f"{where}: constraint {cname} names unknown column {c}")
    return Table(
        name=name,
        schema=schema,
        kind="table",
        columns=tuple(columns),
        primary_key=pk,
        primary_key_name=pk_name,
        unique_keys=tuple(uniques),
        foreign_keys=tuple(fks),
        checks=tuple(checks),
    )


def _ordered_names(nodes) -> tuple[str, ...]:
    return tuple((n.this if isinstance(n, exp.Ordered) else n).name for n in nodes)


def _column(node: exp.ColumnDef, where: str, pii: set[str], statement: str):
    name = node.name
    col_where = f"{where}.{name}"
    nullable, identity, computed, default = True, False, None, None
    pk_name = uq_name = None
    fks: list[ForeignKey] = []
    checks: list[Check] = []
    for constraint in node.constraints:
        kind, cname = constraint.kind, constraint.name
        if isinstance(kind, exp.NotNullColumnConstraint):
            nullable = bool(kind.args.get("allow_null"))
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            pk_name, nullable = cname or f"PK_{where.split('.')[-1]}", False
        elif isinstance(kind, exp.UniqueColumnConstraint):
            uq_name = cname or f"UQ_{where.split('.')[-1]}_{name}"
        elif isinstance(kind, exp.GeneratedAsIdentityColumnConstraint):
            identity = True
        elif isinstance(kind, exp.ComputedColumnConstraint):
            computed = kind.this.sql(dialect="tsql")
        elif isinstance(kind, exp.Reference):
            ref = kind.this
            fks.append(
                ForeignKey(cname or f"FK_{name}", (name,), ref.this.name, tuple(e.name for e in ref.expressions))
            )
        elif isinstance(kind, exp.CheckColumnConstraint):
            checks.append(Check(cname or f"CK_{name}", kind.this.sql(dialect="tsql")))
        elif isinstance(kind, exp.DefaultColumnConstraint):
            default = kind.this.sql(dialect="tsql")  # attached after the load (the application relies on it)
        else:
            raise ContractError(f"{col_where}: unsupported column constraint {constraint.sql('tsql')}")
    comment = " ".join(c.strip() for c in (node.comments or [])) or None
    if computed is not None:
        sql_type, params = _computed_type(node, col_where)
        nullable = False
    else:
        sql_type, params = _parse_type(node.kind.sql(dialect="tsql"), col_where)
        sql_type, params = _real_or_float(sql_type, params, name, statement)
    rule = lookup(sql_type, col_where)
    try:
        pg_default = translate_default(default, rule.family, col_where) if default is not None else None
        pg_computed = translate_computed(computed, col_where) if computed is not None else None
    except (UntranslatableDefaultError, UntranslatableExpressionError) as err:
        raise ContractError(str(err)) from None
    collation = collation_rule(where.split(".")[-1], name)
    column = Column(
        name=name,
        sql_type=rule.sqlserver,
        rule=rule,
        nullable=nullable,
        identity=identity,
        computed=computed,
        comment=comment,
        pii=name in pii,
        default=default,
        postgres_default=pg_default,
        postgres_computed=pg_computed,
        collation=collation.collation if collation else None,
        **_type_params(rule.sqlserver, params, col_where),
    )
    return column, pk_name, uq_name, fks, checks


def _real_or_float(sql_type: str, params: list[str], column: str, statement: str):
    """sqlglot reads REAL as FLOAT; SQL Server's REAL (= FLOAT(1..24)) is 4 bytes, FLOAT(25..53) is 8."""
    if sql_type != "float":
        return sql_type, params
    if re.search(rf"(?:^|[\s,(\[]){re.escape(column)}\]?\s+REAL\b", statement, re.IGNORECASE):
        return "real", []
    if params and int(params[0]) <= 24:
        return "real", []
    return "float", []


def _computed_type(node: exp.ColumnDef, where: str):
    """A computed column's type is its outer CAST (the contract writes them that way)."""
    expr = node.find(exp.ComputedColumnConstraint).this
    if not isinstance(expr, exp.Cast):
        raise ContractError(f"{where}: computed column must be an explicit CAST to know its type")
    return _parse_type(expr.to.sql(dialect="tsql"), where)


def _parse_type(text: str, where: str) -> tuple[str, list[str]]:
    m = _TYPE.match(text.strip().replace(" ", ""))
    if not m:
        raise ContractError(f"{where}: cannot read type {text!r}")
    base, args = m.group(1).lower(), [a for a in (m.group(2) or "").split(",") if a]
    if args == ["MAX"] or args == ["max"]:
        return f"{base}(max)", []
    return base, args


def _type_params(sql_type: str, args: list[str], where: str) -> dict:
    ints = [int(a) for a in args]
    if sql_type == "decimal":
        p = ints[0] if ints else 18
        return {"precision": p, "scale": ints[1] if len(ints) > 1 else 0}
    if sql_type in ("money", "smallmoney"):
        return {"precision": 19 if sql_type == "money" else 10, "scale": 4}
    if sql_type in ("char", "nchar", "varchar", "nvarchar", "binary", "varbinary"):
        return {"length": ints[0] if ints else 1}
    if sql_type in ("datetime2", "datetimeoffset", "time"):
        return {"fsp": ints[0] if ints else 7}
    if ints:
        raise ContractError(f"{where}: type {sql_type} takes no parameters, got {args}")
    return {}


def _index(tree: exp.Create) -> tuple[str, Index]:
    index = tree.this
    table = index.args["table"]
    cols = _ordered_names(index.args["params"].args.get("columns") or [])
    return table.name, Index(index.name, cols, unique=bool(tree.args.get("unique")))


def _view(tree: exp.Create, statement: str, tables: dict[str, Table]) -> Table:
    schema, name = _name_of(tree.this)
    select = tree.expression
    try:
        columns, key, depends_on = infer_view(f"{schema}.{name}", select, tables)
    except (KeyError, ValueError) as err:
        raise ContractError(f"view {schema}.{name}: {err}") from err
    return Table(
        name=name,
        schema=schema,
        kind="view",
        columns=tuple(columns),
        primary_key=key,
        view_sql=select.sql(dialect="tsql"),
        depends_on=depends_on,
    )


def _replace(table: Table, **changes) -> Table:
    from dataclasses import replace

    return replace(table, **changes)


def _validate_references(catalog: Catalog) -> None:
    for t in catalog.base_tables:
        for fk in t.foreign_keys:
            if fk.ref_table not in catalog.by_name:
                raise ContractError(
                    f"{t.qualified_source}: foreign key {fk.name} references unknown table {fk.ref_table}"
                )
            ref = catalog[fk.ref_table]
            for c in fk.ref_columns:
                if c not in ref.column_map:
                    raise ContractError(
                        f"{t.qualified_source}: foreign key {fk.name} references unknown column {fk.ref_table}.{c}"
                    )


def load_catalog(contract: str | Path | None = None, business_rules: str | Path | None = None) -> Catalog:
    """The catalog of the packaged contract (or of another contract file, e.g. in tests)."""
    here = Path(__file__).resolve().parent.parent / "contract"
    contract = Path(contract) if contract else here / "consorcio_simulacao.sql"
    rules = Path(business_rules) if business_rules else here / "business-rules.md"
    return parse_contract(
        contract.read_text(encoding="utf-8"), rules.read_text(encoding="utf-8") if rules.exists() else None
    )
