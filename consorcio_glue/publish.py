"""Batch publish: a batch's loads become visible together or not at all.

Each table's load (`--swap deferred`) finishes its staging table (data, keys, indexes, its own foreign keys
validated against the parents staged by the same batch) and records it in `<staging>._staged`; the closing
`--action publish` run swaps every staged table in one transaction (PostgreSQL DDL is transactional), validates
the foreign keys, and commits, or rolls all back. The staged tables are dropped either way."""

from __future__ import annotations

import contextlib
import json
import time

import psycopg
from psycopg import sql

from consorcio_core.lake import LakeFiles
from consorcio_glue.args import JobArgs
from consorcio_glue.aurora import (
    connect,
    conninfo,
    load_lock_key,
    parent_relation,
    pending_foreign_keys,
    relation,
    relation_exists,
    swap,
    table_lock,
    validate_constraints,
)
from consorcio_glue.errors import LOG, JobError
from consorcio_glue.keys import plain
from consorcio_glue.spec import Spec
from consorcio_glue.transformed import swap_prefix

STAGED = "_staged"  # <staging schema>._staged: table → the batch that staged it, its spec and its rejects
#: how often a child's run looks for its parents in `_staged`
PARENT_POLL_SECONDS = 0.2


def reject_orphans(conn: psycopg.Connection, spec: Spec, batch: frozenset[str], rejects: list[dict]) -> int:
    """Reject mode: rows whose parent is not in what the batch publishes (rejected, or missing) leave the staging
    table too, so no child points at a rejected parent. The reason names the parent key (keys, never values)."""
    removed = 0
    staging = spec.staging_id.as_string(conn)
    for fk in spec.ddl["foreign_keys"]:
        parent = parent_relation(conn, spec, fk, batch)
        if parent == staging or not relation_exists(conn, parent):
            continue
        cols, pcols = fk["columns"], fk["parent_columns"]
        not_null = sql.SQL(" AND ").join(sql.SQL("c.{} IS NOT NULL").format(sql.Identifier(c)) for c in cols)
        match = sql.SQL(" AND ").join(
            sql.SQL("p.{} = c.{}").format(sql.Identifier(pc_), sql.Identifier(c)) for c, pc_ in zip(cols, pcols)
        )
        rows = conn.execute(
            sql.SQL(
                "DELETE FROM {c} c WHERE {nn} AND NOT EXISTS (SELECT 1 FROM {p} p WHERE {m}) RETURNING {k}, {f}"
            ).format(
                c=spec.staging_id,
                nn=not_null,
                p=relation(parent),
                m=match,
                k=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(k)) for k in spec.target_primary_key),
                f=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(c)) for c in cols),
            )
        ).fetchall()
        n = len(spec.target_primary_key)
        for row in rows:
            parent_key = ", ".join(f"{p}={plain(v)}" for p, v in zip(pcols, row[n:]))
            rejects.append(
                {
                    "source_file": None,
                    "row_number": None,
                    "primary_key": {s: plain(v) for s, v in zip(spec.primary_key, row[:n])},
                    "column_name": cols[0],
                    "reason": f"its parent {fk['parent']} ({parent_key}) is not loaded (rejected or "
                    f"missing): foreign key {fk['name']}",
                }
            )
        if rows:
            LOG.warning(
                "%s: %d row(s) rejected because their parent row in %s is not loaded (foreign key %s)",
                spec.target,
                len(rows),
                fk["parent"],
                fk["name"],
            )
        removed += len(rows)
    return removed


def _staged_id(schema: str) -> sql.Composable:
    return sql.Identifier(schema, STAGED)


def record_staged(
    conn: psycopg.Connection, spec: Spec, rejects: list[dict], batch: str, transformed: str | None
) -> None:
    """The staging table is finished: remember which batch staged it (its publish swaps only its own tables)
    and where its transformed parts wait (relative to the lake; swapped in after Aurora commits)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('consorcio.ddl', 0))")
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (table_name text PRIMARY KEY, batch_id text NOT NULL, "
                "spec jsonb NOT NULL, rejects jsonb NOT NULL, transformed text, staged_at timestamptz NOT NULL "
                "DEFAULT now())"
            ).format(_staged_id(spec.staging_schema))
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (table_name, batch_id, spec, rejects, transformed) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (table_name) DO UPDATE SET "
                "batch_id = excluded.batch_id, spec = excluded.spec, rejects = excluded.rejects, "
                "transformed = excluded.transformed, staged_at = now()"
            ).format(_staged_id(spec.staging_schema)),
            (spec.target, batch, json.dumps(spec.raw), json.dumps(rejects), transformed),
        )


def staged_tables(conn: psycopg.Connection, schema: str, tables: list[str], batch: str) -> dict[str, tuple]:
    """table → (spec, rejects, transformed prefix) of what `batch` staged (a table restaged by another batch
    since is not ours)."""
    if not relation_exists(conn, _staged_id(schema).as_string(conn)):
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT table_name, spec, rejects, transformed FROM {} WHERE batch_id = %s AND table_name = ANY(%s)"
        ).format(_staged_id(schema)),
        (batch, tables),
    ).fetchall()
    return {name: (Spec(raw), rejects, transformed) for name, raw, rejects, transformed in rows}


def batch_parents(spec: Spec, batch: frozenset[str]) -> list[str]:
    """The tables of the same batch this table's foreign keys reference (itself excluded)."""
    return list(
        dict.fromkeys(
            fk["parent_table"]
            for fk in spec.ddl["foreign_keys"]
            if fk.get("parent_table") in batch and fk["parent_table"] != spec.target
        )
    )


def _unstaged(conn: psycopg.Connection, schema: str, parents: list[str], batch: str) -> list[str]:
    if not relation_exists(conn, _staged_id(schema).as_string(conn)):
        return list(parents)
    staged = {
        row[0]
        for row in conn.execute(
            sql.SQL("SELECT table_name FROM {} WHERE batch_id = %s AND table_name = ANY(%s)").format(
                _staged_id(schema)
            ),
            (batch, parents),
        ).fetchall()
    }
    return [p for p in parents if p not in staged]


def _being_loaded(conn: psycopg.Connection, table: str) -> bool:
    """Whether some session holds `table`'s load lock (`aurora.table_lock`): a run of it is alive."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks l, (SELECT hashtextextended(%s, 0) AS k) h "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND l.classid = ((h.k >> 32) & 4294967295)::oid AND l.objid = (h.k & 4294967295)::oid)",
        (load_lock_key(table),),
    ).fetchone()[0]  # type: ignore[index]


def wait_for_parents(
    conn: psycopg.Connection, spec: Spec, batch: frozenset[str], batch_id: str, grace_seconds: float
) -> float:
    """Block until every parent of the batch is staged by it, so this table's foreign keys are validated against
    the rows the batch publishes. The orchestrator starts a child's run as soon as its parents' runs have started
    (the data streams meanwhile) and stops it when a parent fails; a parent that is neither staged nor held by a
    live run for `grace_seconds` (its run is gone: a lost orchestrator) fails this run. Returns the seconds waited."""
    parents = batch_parents(spec, batch)
    started = time.monotonic()
    missing = _unstaged(conn, spec.staging_schema, parents, batch_id)
    if missing:
        LOG.info("%s: waiting for %s to be staged by this batch", spec.target, ", ".join(missing))
    orphaned_since: float | None = None
    while missing:
        time.sleep(PARENT_POLL_SECONDS)
        missing = _unstaged(conn, spec.staging_schema, missing, batch_id)
        dead = [p for p in missing if not _being_loaded(conn, p)]
        if not dead:
            orphaned_since = None
            continue
        orphaned_since = orphaned_since or time.monotonic()
        if time.monotonic() - orphaned_since > grace_seconds:
            raise JobError(
                f"{spec.target}: parent table(s) {', '.join(dead)} were not staged by this batch and no "
                f"run is loading them (waited {grace_seconds:g}s): the batch cannot publish"
            )
    waited = time.monotonic() - started
    if parents and waited >= PARENT_POLL_SECONDS:
        LOG.info("%s: parents staged after %.2fs of waiting", spec.target, waited)
    return waited


def swap_batch(conn: psycopg.Connection, staged: list[tuple], run_id: str) -> list[str]:
    """Every staged table swapped in one transaction (parents first), foreign keys validated before COMMIT."""
    touched: list[tuple[str, str]] = []
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '120s'")
        for spec, rejects, _ in staged:
            if not relation_exists(conn, spec.staging_id.as_string(conn)):
                raise JobError(f"{spec.target}: its staging table is gone (dropped by another run's load of it)")
            touched += swap(conn, spec, rejects, run_id, validate=False)
        names = [spec.target for spec, _, _ in staged]
        pending = list(dict.fromkeys(touched + pending_foreign_keys(conn, staged[0][0].schema, names)))
        failures = validate_constraints(conn, pending)
        if failures:
            raise JobError(
                "foreign keys would not hold after publishing the batch, so nothing was published "
                "(every table keeps its previous version): " + "; ".join(failures)
            )
    return [f"{t}.{n}" for t, n in pending]


def discard_staged(conn: psycopg.Connection, lake: LakeFiles, schema: str, tables: list[str], batch: str) -> None:
    """Drop what `batch` staged (children first, transformed parts still waiting included) and forget it;
    tables restaged by another batch are left alone."""
    with contextlib.suppress(psycopg.Error, OSError):
        ours = staged_tables(conn, schema, tables, batch)
        for table in reversed(tables):
            if table in ours:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))
                if ours[table][2]:
                    lake.delete_dir(lake.path(ours[table][2]))
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE batch_id = %s AND table_name = ANY(%s)").format(_staged_id(schema)),
            (batch, list(ours)),
        )
        # a run of this batch stopped before it recorded its staging table (a child whose parent failed): the
        # caller holds every table's load lock, so a staging table no batch recorded belongs to no live run
        recorded = {
            name
            for (name,) in conn.execute(
                sql.SQL("SELECT table_name FROM {} WHERE table_name = ANY(%s)").format(_staged_id(schema)), (tables,)
            )
        }
        for table in reversed(tables):
            if table not in ours and table not in recorded:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, table)))


def publish_batch(args: JobArgs, pipes) -> dict:
    """The batch's closing run: swap all of its staged tables at once, or (--discard) none of them."""
    tables = [t for t in args.tables.split(",") if t]
    lake = LakeFiles.at(args.lake)
    with connect(conninfo(args), "publish") as conn, contextlib.ExitStack() as locks:
        for table in sorted(tables):  # one order for every publish: two batches never deadlock on these
            locks.enter_context(table_lock(conn, table))
        try:
            if args.discard:
                LOG.info("discarding %d staged table(s): the batch did not load completely", len(tables))
                return {"published": [], "discarded": tables}
            staged = staged_tables(conn, args.staging_schema, tables, args.run_id)
            lost = [t for t in tables if t not in staged]
            if lost:
                raise JobError(
                    f"{', '.join(lost)}: not staged by this batch (run {args.run_id}) or restaged by "
                    "another run since: nothing was published"
                )
            waiting = {t: staged[t][2] for t in tables if staged[t][2]}
            gone = [t for t, prefix in waiting.items() if not lake.exists(lake.path(prefix))]
            if gone:
                raise JobError(
                    f"{', '.join(gone)}: the transformed parts this batch wrote are gone (removed by "
                    "another run's load of the table): nothing was published"
                )
            mark = time.perf_counter()
            validated = swap_batch(conn, [staged[t] for t in tables], args.run_id)
            for table, prefix in waiting.items():  # Aurora has committed: the transformed zone follows
                swap_prefix(lake, lake.path(prefix), lake.path("transformed", table))
            LOG.info(
                "published %d table(s) in one transaction in %.3fs (%d foreign key(s) validated)",
                len(tables),
                time.perf_counter() - mark,
                len(validated),
            )
            return {"published": tables, "validated": validated}
        finally:
            discard_staged(conn, lake, args.staging_schema, tables, args.run_id)
