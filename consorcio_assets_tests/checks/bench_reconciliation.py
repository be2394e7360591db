"""Cost of every check against the load time, on a stand-in whose SimulacaoParcela has about a million rows.

    .venv/bin/python -m consorcio_assets_tests.checks.bench_reconciliation --simulacoes 170000

Seeds the stand-in with the generator (170,000 simulações give ~1.2M instalments), migrates it with the
reference loader into a fresh database of the embedded server (the load time: a lower bound of the real
DMS + Glue load), runs every check group of `defs.checks` as `verify_migration` does (CHECK_WORKERS checks at
a time; wall time per group, seconds per check kind and per table), then changes one centavo and deletes one
row of SimulacaoParcela and times the hashdiff finding them.
Not part of the test suite (it takes minutes); prints a report.
"""

from __future__ import annotations

import argparse
import shutil
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import sqlalchemy as sa

from consorcio_assets.catalog import catalog
from consorcio_assets.checks import hashdiff
from consorcio_assets.checks.sides import SOURCE, TARGET, Side
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.defs.checks import CHECK_WORKERS, GROUPS, Connections
from consorcio_assets.source.stand_in import seed
from consorcio_assets.target.postgres import sqlalchemy_url
from consorcio_assets_tests.checks.reference import load


class _Fixed:
    """A resource stand-in handing out a prepared side."""

    def __init__(self, side: Side):
        self._side = side

    def side(self) -> Side:
        return self._side


def _server_url(home: Path) -> str:
    import pgserver

    return pgserver.get_server(str(home / "pg"), cleanup_mode=None).get_uri("postgres")


def run(simulacoes: int, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    source_path = home / f"source_{simulacoes}.duckdb"
    if not source_path.exists():
        started = time.perf_counter()
        counts = seed(source_path, simulacoes=simulacoes, seed=42)
        print(f"seeded {sum(counts.values()):,} rows in {time.perf_counter() - started:.1f}s: {counts}")
    server = _server_url(home)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.replace("/postgres?", f"/{name}?", 1)
    lake_root = home / f"lake_{name}"
    try:
        started = time.perf_counter()
        rows = load(source_path, url, lake_root)
        load_seconds = time.perf_counter() - started
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        print(
            f"reference load: {sum(rows.values()):,} rows in {load_seconds:.1f}s "
            f"(SimulacaoParcela {rows['SimulacaoParcela']:,})"
        )
        _checks(source_path, url, lake_root, load_seconds)
        _one_centavo(source_path, url)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(lake_root, ignore_errors=True)


def _sides(source_path: Path, url: str) -> tuple[Side, Side]:
    source = sa.create_engine(f"duckdb:///{source_path}", connect_args={"read_only": True}, poolclass=sa.NullPool)
    return Side(SOURCE, source), Side(TARGET, sa.create_engine(sqlalchemy_url(url)))


def _checks(source_path: Path, url: str, lake_root: Path, load_seconds: float) -> None:
    """Every check group as verify_migration runs it (CHECK_WORKERS at a time); wall time per group."""
    cat = catalog()
    source, target = _sides(source_path, url)
    conns = Connections(_Fixed(source), _Fixed(target), cat, Lake(lake_root.as_uri()))
    by_kind: dict[str, float] = defaultdict(float)
    by_table: dict[str, float] = defaultdict(float)
    walls: dict[str, float] = {}
    failures = []

    def timed(kind, table):
        started = time.perf_counter()
        outcome = kind.run(conns, table)
        return kind, table, outcome, time.perf_counter() - started

    for group, kinds in GROUPS.items():
        started = time.perf_counter()
        with ThreadPoolExecutor(CHECK_WORKERS) as pool:
            jobs = [pool.submit(timed, kind, table) for kind in kinds for table in cat if kind.applies(table)]
            for kind, table, outcome, seconds in (job.result() for job in jobs):
                by_kind[f"{kind.stage}:{kind.name}"] += seconds
                by_table[table.name] += seconds
                if not outcome.passed:
                    failures.append(f"{kind.stage}/{table.target_name} {kind.name}: {outcome.summary}")
        walls[group] = time.perf_counter() - started
    total = sum(walls.values())
    print(f"\nall checks, all tables (wall): {total:.1f}s = {100 * total / load_seconds:.0f}% of the load time")
    for group, seconds in walls.items():
        print(f"  {group:<45} {seconds:7.2f}s wall")
    print("per check (time of each check summed over tables):")
    for name, seconds in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<45} {seconds:7.2f}s")
    print("per table:")
    for name, seconds in sorted(by_table.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<45} {seconds:7.2f}s")
    print("not passing:", *failures, sep="\n  ")
    conns.close()


def _one_centavo(source_path: Path, url: str) -> None:
    table = catalog()["SimulacaoParcela"]
    source, target = _sides(source_path, url)
    with psycopg.connect(url, autocommit=True) as conn:
        sim, num = conn.execute(
            "SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela ORDER BY 1, 2 OFFSET 654321 LIMIT 1"
        ).fetchone()
        conn.execute(
            f"UPDATE consorcio.simulacao_parcela SET valor_total = valor_total + 0.01 "
            f"WHERE simulacao_id = {sim} AND numero_parcela = {num}"
        )
        conn.execute(
            "DELETE FROM consorcio.simulacao_parcela WHERE (simulacao_id, numero_parcela) = "
            "(SELECT simulacao_id, numero_parcela FROM consorcio.simulacao_parcela ORDER BY 1 DESC, 2 "
            "LIMIT 1)"
        )
    outcome = hashdiff.reconcile(source, target, table)
    print(
        f"\nhashdiff after one changed centavo and one deleted row: {outcome.details['seconds']:.2f}s, "
        f"{outcome.details['queries']} queries, {outcome.counts['rows_fetched']:,} rows fetched: {outcome.keys}"
    )
    target.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--simulacoes", type=int, default=170_000)
    parser.add_argument("--home", type=Path, default=Path(".data/bench-checks"))
    args = parser.parse_args()
    run(args.simulacoes, args.home.resolve())


if __name__ == "__main__":
    main()
