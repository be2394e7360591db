"""`consorcio`: what is not a Dagster job — seeding the stand-in, URLs, and running the migration end to end."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from .settings import default_source_path, get_settings


def cmd_seed(args) -> int:
    from .source.stand_in import seed

    settings = get_settings()
    path = settings.source_path or default_source_path(settings.home)
    if settings.source_path is None:
        print("CONSORCIO_SOURCE_URL is not the embedded stand-in: nothing to seed", file=sys.stderr)
        return 2
    try:
        started = time.perf_counter()
        counts = seed(path, simulacoes=args.simulacoes, seed=args.seed, force=args.force)
    except FileExistsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    for name, n in counts.items():
        print(f"  {name:<20} {n:>12,}")
    print(f"seeded {path} with {total:,} rows in {seconds:.1f}s ({total / seconds:,.0f} rows/s)")
    return 0


def cmd_db_url(args) -> int:
    from .target.postgres import DAGSTER_DB, TARGET_DB, ensure_database

    print(ensure_database(DAGSTER_DB if args.dagster else TARGET_DB))
    return 0


def _dagster(argv: list[str]) -> int:
    from .instance import prepare_instance_env

    return subprocess.call([sys.executable, "-m", "dagster", *argv], env=prepare_instance_env())


def cmd_run(args) -> int:
    """Seed the stand-in if missing, run `migrate_all`, print the per-table summary."""
    settings = get_settings()
    if settings.source_path is not None and not settings.source_path.exists():
        print(f"seeding the embedded source at {settings.source_path} ({args.simulacoes:,} simulações)")
        seed_args = argparse.Namespace(simulacoes=args.simulacoes, seed=args.seed, force=False)
        if cmd_seed(seed_args):
            return 1
    from pathlib import Path

    config = Path(__file__).with_name("run_config.yaml")
    code = _dagster(["job", "execute", "-m", "consorcio_assets.definitions", "-j", args.job, "-c", str(config)])
    from .summary import print_latest_run_summary
    from .instance import prepare_instance_env
    import os

    os.environ.update(prepare_instance_env())
    print_latest_run_summary(args.job)
    return code


def cmd_summary(args) -> int:
    from .instance import prepare_instance_env
    from .summary import print_latest_run_summary
    import os

    os.environ.update(prepare_instance_env())
    return 0 if print_latest_run_summary(args.job) else 1


def cmd_verify(args) -> int:
    from .verify import main_verify

    return main_verify()


def cmd_bench(args, rest: list[str]) -> int:
    from .bench.cli import main as bench_main

    return bench_main(rest)


def cmd_docs(args) -> int:
    from pathlib import Path

    from .docs import write_docs

    for path in write_docs(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_sql(args) -> int:
    """Print every statement the platform may send to the source, for a DBA to review (each ends with GO)."""
    from .source.inventory import script

    print(script(args.dialect), end="")
    return 0


def cmd_ui(args) -> int:
    from pathlib import Path

    workspace = Path(__file__).resolve().parent.parent / "workspace.yaml"
    return _dagster(["dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consorcio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("seed", help="build the embedded SQL Server stand-in with generated data")
    p.add_argument("--simulacoes", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--force", action="store_true", help="replace an existing stand-in")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("db-url", help="print the target PostgreSQL URL in use")
    p.add_argument("--dagster", action="store_true", help="the Dagster storage database instead")
    p.set_defaults(func=cmd_db_url)

    p = sub.add_parser("run", help="seed if needed, run the whole migration with all checks, print a summary")
    p.add_argument("--simulacoes", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--job", default="migrate_all")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("summary", help="per-table summary of the latest run of a job")
    p.add_argument("--job", default="migrate_all")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("verify", help="run every check against the current state (job verify_migration); non-zero on any ERROR")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("bench", help="measure every stage against the floors and the usual tools (see bench/README.md)",
                       add_help=False)
    p.set_defaults(func=cmd_bench, passthrough=True)

    p = sub.add_parser("docs", help="regenerate the architecture, data model and runbook docs from the catalog")
    p.add_argument("--out", default="docs")
    p.set_defaults(func=cmd_docs)

    p = sub.add_parser("sql", help="print every statement sent to the source, each followed by GO "
                       "(default dialect: %(default)s)")
    p.add_argument("--dialect", choices=("mssql", "duckdb"), default="mssql",
                   help="mssql: SQL Server 2017 as run in production; duckdb: the local stand-in's twins "
                        "(default: %(default)s)")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("ui", help="start the Dagster UI (webserver and daemon) on the PostgreSQL-backed instance")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_ui)

    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return args.func(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
