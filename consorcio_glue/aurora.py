"""Aurora PostgreSQL: connections, the staging table, constraints and indexes after the data, foreign keys,
the one-transaction swap, rejected rows and the batch's closing foreign-key validation."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
from dataclasses import dataclass

import psycopg
import pyarrow.csv as pacsv
from psycopg import sql

from consorcio_core.resilience import boto_config, retry, transient_postgres
from consorcio_glue.args import JobArgs
from consorcio_glue.errors import LOG, JobError, no_values
from consorcio_glue.keys import plain
from consorcio_glue.owner import require_owner
from consorcio_glue.spec import Spec
from consorcio_glue.transformed import rejects_table

INDEX_BUILD_MEMORY = "256MB"


def aws_client(service: str):
    """A boto3 client with botocore's standard retries (throttling, 5xx and connection errors, full jitter)."""
    import boto3

    return boto3.client(service, config=boto_config())


def conninfo(args: JobArgs) -> str:
    if args.target_url_env:
        url = os.environ.get(args.target_url_env)
        if not url:
            raise JobError(f"environment variable {args.target_url_env} (the target URL) is not set")
        return url
    if args.target_secret_id:
        answer = aws_client("secretsmanager").get_secret_value(SecretId=args.target_secret_id)
        secret = json.loads(answer["SecretString"])
        return psycopg.conninfo.make_conninfo(
            host=secret["host"],
            port=secret.get("port", 5432),
            user=secret["username"],
            password=secret["password"],
            dbname=secret.get("dbname", "consorcio"),
            sslmode=secret.get("sslmode", "prefer"),
        )
    raise JobError("no target: pass --target-secret-id (AWS) or --target-url-env (local)")


def _application_name(name: str) -> str:
    return f"consorcio-glue:{name}"[:63]


def connect(dsn: str, name: str, autocommit: bool = True) -> psycopg.Connection:
    """A connection, retrying transient failures with backoff and full jitter: an Aurora failover or a burst of
    connections must not fail a load."""
    return retry(
        lambda: psycopg.connect(dsn, autocommit=autocommit, application_name=_application_name(name)),
        transient=transient_postgres,
        what=f"{name}: connecting to PostgreSQL",
        log=LOG,
    )


VALUE_DETAILS = ("Key (", "Failing row contains")  # PostgreSQL details that quote a row's values


def pg_error(err: Exception) -> str:
    """A PostgreSQL error without the row text COPY puts in its context (it may hold PII)."""
    diag = getattr(err, "diag", None)
    if diag is None or diag.message_primary is None:
        return no_values(str(err))
    detail = diag.message_detail or ""
    detail = f": {detail}" if detail and not any(quoted in detail for quoted in VALUE_DETAILS) else ""
    return f"{diag.message_primary}{detail}{_copy_position(diag.context or '')}"


def _copy_position(context: str) -> str:
    """Where in its input a COPY failed (line and column), from PostgreSQL's CONTEXT, without the value it quotes."""
    m = re.search(r"COPY [\w.]+, line (\d+)(?:, column (\w+))?", context)
    if not m:
        return ""
    return f" (COPY stream line {m.group(1)}" + (f", column {m.group(2)})" if m.group(2) else ")")


def load_lock_key(name: str) -> str:
    return f"consorcio.load:{name}"


@contextlib.contextmanager
def table_lock(conn: psycopg.Connection, name: str):
    """A session advisory lock per table: two runs of one table never interleave; a killed run's lock dies with it."""
    key = load_lock_key(name)
    got = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()[0]  # type: ignore[index]
    if not got:
        LOG.info("another run is loading %s: waiting for its lock", name)
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def run_ddl(conn: psycopg.Connection, statements: list[str]) -> None:
    for stmt in statements:
        conn.execute(stmt)


def prepare_staging(conn: psycopg.Connection, spec: Spec) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema)))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.staging_schema)))
    # CASCADE: a staged child of a batch that never published (killed) may still reference this staging table
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(spec.staging_id))
    run_ddl(conn, spec.ddl["create"])


def drop_staging(conn: psycopg.Connection, spec: Spec) -> None:
    """A failed load leaves no half-written staging table behind. Best effort: the connection may be what failed
    (and a killed job cannot do it at all): the table's next run drops it first anyway."""
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(spec.staging_id))


def keys_sql(cols: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in cols)


def finish_staging(conn: psycopg.Connection, spec: Spec, args: JobArgs, rejects: list[dict]) -> int:
    """Constraints and indexes after the data (one pass each); a failure names the rows that break it.
    Returns how many rows reject mode moved out of the table for breaking a CHECK."""
    conn.execute(f"SET maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")  # sort keys in memory, not on disk
    removed = 0
    for item in spec.ddl["after_load"]:
        if item["kind"] == "check" and args.on_invalid == "reject":
            moved = reject_check(conn, spec, item)
            removed += len(moved)
            rejects.extend(moved)
        try:
            conn.execute(item["sql"])
        except psycopg.Error as err:
            raise JobError(
                f"{spec.target}: {item['kind']} {item['name']} fails: {pg_error(err)}{diagnose(conn, spec, item)}"
            ) from None
    for column in spec.ddl.get("identity", []):
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence({tbl}, {col}), COALESCE(max({c}), 0) + 1, false) FROM {s}.{t}"
            ).format(
                tbl=sql.Literal(spec.staging_id.as_string(conn)),
                col=sql.Literal(column),
                c=sql.Identifier(column),
                s=sql.Identifier(spec.staging_schema),
                t=sql.Identifier(spec.target),
            )
        )
    conn.execute("RESET maintenance_work_mem")
    # VACUUM, not only ANALYZE: the insert-triggered autovacuum of a freshly loaded table would otherwise scan it
    # in the background, taking a core from the next load and the checks, and hold off the swaps of the tables
    # that reference it (autovacuum yields to a lock request only after deadlock_timeout, 1 s)
    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(spec.staging_id))
    return removed


def diagnose(conn: psycopg.Connection, spec: Spec, item: dict) -> str:
    """The first keys breaking a primary key, unique key or check (keys only)."""
    t = sql.SQL("{}.{}").format(sql.Identifier(spec.staging_schema), sql.Identifier(spec.target))
    pk = keys_sql(spec.target_primary_key)
    if item["kind"] in ("primary_key", "unique"):
        cols = keys_sql(item["columns"])
        q = sql.SQL("SELECT {c}, count(*) FROM {t} GROUP BY {c} HAVING count(*) > 1 LIMIT 5").format(c=cols, t=t)
        names = item["columns"]
    elif item["kind"] == "check":
        q = sql.SQL("SELECT {pk} FROM {t} WHERE NOT ({p}) LIMIT 5").format(pk=pk, t=t, p=sql.SQL(item["predicate"]))
        names = spec.target_primary_key
    else:
        return ""
    try:
        with conn.transaction():
            rows = conn.execute(q).fetchall()
    except psycopg.Error:
        return ""
    keys = ["(" + ", ".join(f"{n}={v}" for n, v in zip(names, r)) + ")" for r in rows]
    return f"; first offending keys: {', '.join(keys)}" if keys else ""


def reject_check(conn: psycopg.Connection, spec: Spec, item: dict) -> list[dict]:
    """Reject mode: rows that break a CHECK leave the staging table for consorcio_rejects."""
    t = sql.SQL("{}.{}").format(sql.Identifier(spec.staging_schema), sql.Identifier(spec.target))
    pk = spec.target_primary_key
    q = sql.SQL("DELETE FROM {t} WHERE NOT ({p}) RETURNING {pk}").format(
        t=t, p=sql.SQL(item["predicate"]), pk=keys_sql(pk)
    )
    rows = conn.execute(q).fetchall()
    source_pk = spec.primary_key
    return [
        {
            "source_file": None,
            "row_number": None,
            "primary_key": {s: plain(v) for s, v in zip(source_pk, r)},
            "column_name": None,
            "reason": f"violates check constraint {item['name']}",
        }
        for r in rows
    ]


def parent_relation(conn: psycopg.Connection, spec: Spec, fk: dict, batch: frozenset[str]) -> str:
    """The table a staged child's key references: itself, the parent staged by the same batch, or the live one."""
    if fk["parent"] == spec.table_id.as_string(conn):
        return spec.staging_id.as_string(conn)
    if fk.get("parent_table") in batch:
        return sql.Identifier(spec.staging_schema, fk["parent_table"]).as_string(conn)
    return fk["parent"]


def add_foreign_keys(conn: psycopg.Connection, spec: Spec, batch: frozenset[str] = frozenset()) -> None:
    """Before the swap, the new table's own foreign keys, validated on the staging table: one pass each, and
    the key moves with the table, so nothing is left to validate after the swap (parents are loaded first;
    a parent staged by the same batch is the one referenced). A row without its parent fails the load here,
    naming the first keys, while the previous table stays."""
    staging = spec.staging_id.as_string(conn)
    for fk in spec.ddl["foreign_keys"]:
        parent = parent_relation(conn, spec, fk, batch)
        if not relation_exists(conn, parent):
            LOG.warning(
                "%s: parent %s of %s is not loaded yet; the key is added when it is",
                spec.target,
                fk["parent"],
                fk["name"],
            )
            continue
        try:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})").format(
                    spec.staging_id,
                    sql.Identifier(fk["name"]),
                    keys_sql(fk["columns"]),
                    relation(parent),
                    keys_sql(fk["parent_columns"]),
                )
            )
        except psycopg.errors.ForeignKeyViolation:
            count, keys = orphans(conn, staging, fk["columns"], parent, fk["parent_columns"], spec.target_primary_key)
            raise JobError(
                f"{spec.target}: {count} row(s) break foreign key {fk['name']} -> {fk['parent']}; first keys: {keys}"
            ) from None


def own_foreign_keys(conn: psycopg.Connection, table: str) -> dict[str, bool]:
    """name → validated, for the foreign keys `table` holds."""
    return dict(
        conn.execute(
            "SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' AND conrelid = %s::regclass", (table,)
        ).fetchall()
    )


# A table is named by the SQL text of its qualified name, quoted where it must be: the spec's foreign keys
# carry it so (the catalog's DDL quotes), PostgreSQL's `regclass::text` gives it so, and the job's own tables are
# turned into it with `sql.Identifier(...).as_string`. Never built by joining raw names with a dot.


def relation_exists(conn: psycopg.Connection, qualified: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()[0]  # type: ignore[index]  # one row, always


def relation(name: str) -> sql.Composable:
    return sql.SQL(name)


def orphans(conn, child: str, cols: list[str], parent: str, pcols: list[str], key: list[str]) -> tuple[int, str]:
    not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
    match = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(c)) for c, p in zip(cols, pcols)
    )
    where = sql.SQL("{nn} AND NOT EXISTS (SELECT 1 FROM {p} p WHERE {m})").format(
        nn=not_null, p=relation(parent), m=match
    )
    count = conn.execute(sql.SQL("SELECT count(*) FROM {c} c WHERE {w}").format(c=relation(child), w=where)).fetchone()[
        0
    ]
    if not count:
        return 0, ""
    rows = conn.execute(
        sql.SQL("SELECT {k} FROM {c} c WHERE {w} LIMIT 5").format(
            k=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in key), c=relation(child), w=where
        )
    ).fetchall()
    return count, ", ".join("(" + ", ".join(f"{k}={v}" for k, v in zip(key, r)) + ")" for r in rows)


def swap(
    conn: psycopg.Connection, spec: Spec, rejects: list[dict] | None, run_id: str, validate: bool
) -> list[tuple[str, str]]:
    """One transaction: readers see the previous complete table or the new one.

    The table's own foreign keys come validated from the staging table (`add_foreign_keys`); those of other
    tables pointing at it, and its own whose parent appeared since, are re-added NOT VALID; with
    `validate` they are validated in the same transaction (a failure rolls the swap back), otherwise they are
    returned for the batch's closing `validate` run. Views others built on the table are dropped and re-created
    (with their owner, comment and grants) in the same transaction.
    """
    touched: list[tuple[str, str]] = []
    table = spec.table_id.as_string(conn)
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '120s'")
        exists = relation_exists(conn, table)
        incoming, views = [], []
        if exists:
            conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(spec.table_id))
            incoming = conn.execute(
                "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = %s::regclass AND conrelid <> confrelid ORDER BY conname",
                (table,),
            ).fetchall()
            for name, child, _ in incoming:
                conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(relation(child), sql.Identifier(name)))
            views = dependent_views(conn, table)
            for view in reversed(views):
                conn.execute(view.drop)
            conn.execute(sql.SQL("DROP TABLE {}").format(spec.table_id))
        conn.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(spec.staging_id, sql.Identifier(spec.schema)))
        for view in views:
            view.recreate(conn)
        own = own_foreign_keys(conn, table)  # added on the staging table; NOT VALID if a parent swap raced it
        touched += [(table, name) for name, valid in own.items() if not valid]
        for fk in spec.ddl["foreign_keys"]:
            if fk["name"] not in own and relation_exists(conn, fk["parent"]):
                conn.execute(fk["sql"])
                touched.append((table, fk["name"]))
        done = set()
        for name, child, definition in incoming:
            definition = definition.removesuffix(" NOT VALID")
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {} NOT VALID").format(
                    relation(child), sql.Identifier(name), sql.SQL(definition)
                )
            )
            touched.append((child, name))
            done.add(name)
        for fk in spec.ddl["incoming_foreign_keys"]:
            if fk["name"] not in done and relation_exists(conn, fk["child"]):
                conn.execute(fk["sql"])
                touched.append((fk["child"], fk["name"]))
        if rejects is not None:
            store_rejects(conn, spec, rejects, run_id)
        if validate:
            failures = validate_constraints(conn, touched)
            if failures:
                raise JobError(
                    f"{spec.target}: foreign keys would not hold after the swap, which is rolled back: "
                    + "; ".join(failures)
                )
        require_owner(spec.target)  # last look before the commit: a dead run's load is rolled back
    return [] if validate else touched


@dataclass(frozen=True)
class DependentView:
    """A view (or materialized view) someone built on a loaded table: dropped and re-created by the swap."""

    name: str
    kind: str  # "v" or "m"
    definition: str
    comment: str | None
    owner: str
    grants: tuple[tuple[str, str], ...]

    @property
    def keyword(self) -> str:
        return "MATERIALIZED VIEW" if self.kind == "m" else "VIEW"

    @property
    def drop(self) -> sql.Composed:
        return sql.SQL("DROP {} {}").format(sql.SQL(self.keyword), relation(self.name))

    def recreate(self, conn: psycopg.Connection) -> None:
        name = relation(self.name)
        conn.execute(
            sql.SQL("CREATE {} {} AS {}").format(
                sql.SQL(self.keyword), name, sql.SQL(self.definition.rstrip().rstrip(";"))
            )
        )
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(self.keyword), name, sql.Identifier(self.owner)))
        if self.comment is not None:
            conn.execute(
                sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(self.keyword), name, sql.Literal(self.comment))
            )
        for grantee, privilege in self.grants:
            who = sql.SQL("PUBLIC") if grantee == "PUBLIC" else sql.Identifier(grantee)
            conn.execute(sql.SQL("GRANT {} ON {} TO {}").format(sql.SQL(privilege), name, who))


def dependent_views(conn: psycopg.Connection, table: str) -> list[DependentView]:
    """Views depending on `table`, directly or through other views, shallowest first."""
    rows = conn.execute(
        """WITH RECURSIVE deps(oid, depth) AS (
               SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
               WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = %(t)s::regclass AND r.ev_class <> d.refobjid
               UNION
               SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid
               JOIN pg_rewrite r ON r.oid = d.objid
               WHERE d.classid = 'pg_rewrite'::regclass AND r.ev_class <> deps.oid AND deps.depth < 50)
           SELECT c.oid::regclass::text, c.relkind, pg_get_viewdef(c.oid), obj_description(c.oid, 'pg_class'),
                  pg_get_userbyid(c.relowner),
                  array(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                               || '|' || a.privilege_type
                        FROM aclexplode(c.relacl) a WHERE a.grantee <> c.relowner),
                  max(deps.depth)
           FROM deps JOIN pg_class c ON c.oid = deps.oid
           GROUP BY c.oid ORDER BY max(deps.depth), 1""",
        {"t": table},
    ).fetchall()
    return [
        DependentView(name, kind, definition, comment, owner, tuple(tuple(g.split("|", 1)) for g in grants))
        for name, kind, definition, comment, owner, grants, _ in rows
    ]


def store_rejects(conn: psycopg.Connection, spec: Spec, rejects: list[dict], run_id: str) -> None:
    rejects_id = sql.SQL("{}.consorcio_rejects").format(sql.Identifier(spec.schema)).as_string(conn)
    if conn.execute("SELECT to_regclass(%s)", (rejects_id,)).fetchone()[0] is None:  # type: ignore[index]  # one row, always
        # concurrent first loads would race on CREATE TABLE IF NOT EXISTS (its sequence's unique name)
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(spec.ddl["rejects"])
    conn.execute(
        sql.SQL("DELETE FROM {}.consorcio_rejects WHERE table_name = %s").format(sql.Identifier(spec.schema)),
        (spec.target,),
    )
    if not rejects:
        return
    table = rejects_table(rejects, spec.target, run_id)
    with conn.cursor().copy(
        sql.SQL("COPY {}.consorcio_rejects ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(spec.schema), keys_sql(table.schema.names)
        )
    ) as copy:
        out = io.BytesIO()
        pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False))
        copy.write(out.getbuffer())


def validate_constraints(conn: psycopg.Connection, constraints: list[tuple[str, str]]) -> list[str]:
    """VALIDATE each (table, constraint); failures come back with their orphan keys."""
    failures = []
    for table, name in constraints:
        try:
            with conn.transaction():  # a savepoint inside the swap: a failure leaves the transaction usable
                conn.execute(
                    sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(relation(table), sql.Identifier(name))
                )
        except psycopg.errors.UndefinedObject:
            continue  # dropped by a later swap of its parent, which re-added and reported it
        except psycopg.Error as err:
            failures.append(f"{table}.{name}: {pg_error(err)}{describe_orphans(conn, table, name)}")
    return failures


def describe_orphans(conn: psycopg.Connection, table: str, name: str) -> str:
    row = conn.execute(
        """SELECT c.confrelid::regclass::text,
                  array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i),
                  array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i),
                  array(SELECT a.attname FROM pg_index x JOIN unnest(x.indkey) WITH ORDINALITY k(n, i) ON true
                        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n
                        WHERE x.indrelid = c.conrelid AND x.indisprimary ORDER BY k.i)
           FROM pg_constraint c WHERE c.conname = %s AND c.conrelid = %s::regclass""",
        (name, table),
    ).fetchone()
    if row is None:
        return ""
    parent, cols, pcols, key = row
    count, keys = orphans(conn, table, cols, parent, pcols, key or cols)
    return f"; {count} orphan row(s), first keys: {keys}" if count else ""


def pending_foreign_keys(conn: psycopg.Connection, schema: str, tables: list[str]) -> list[tuple[str, str]]:
    rows = conn.execute(
        """SELECT c.conrelid::regclass::text, c.conname, cl.relname, pl.relname
           FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid JOIN pg_class pl ON pl.oid = c.confrelid
           WHERE c.contype = 'f' AND NOT c.convalidated AND c.connamespace = %s::regnamespace
           ORDER BY 1, 2""",
        (schema,),
    ).fetchall()
    wanted = set(tables)
    return [(t, n) for t, n, child, parent in rows if not wanted or child in wanted or parent in wanted]
