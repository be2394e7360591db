"""consorcio: seed the embedded source, run the migration with progress and a summary, verify, open the UI.

Run it from anywhere inside the project (like git, it finds the project by walking up to its pyproject.toml and
keeps its state in <project>/.data unless CONSORCIO_HOME says otherwise). Settings come from the environment:
`consorcio settings` lists them. Errors are one line (exit 2: bad input or settings, 1: a failure); add
--debug to see the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import tomllib
import warnings
from pathlib import Path

from consorcio_assets.common.private_home import private_cli
from consorcio_assets.orchestration.startup import first_problem

PROJECT_NAME = "consorcio-migration"
HOME_DIR = ".data"
#: seconds a reachability check of a configured PostgreSQL waits before saying it cannot connect
CONNECT_TIMEOUT = 3
INTERRUPTED = 130  # exit status of a command stopped by Ctrl-C (128 + SIGINT), as `run_and_follow` returns it


class UsageError(Exception):
    """Bad input or settings: exit 2."""


class Failure(Exception):
    """Something did not work: exit 1."""


class Parser(argparse.ArgumentParser):
    """Help with every default; a usage error is one line and exit 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def whole_number(minimum: int, maximum: int | None = None, what: str = ""):
    """An argparse type: a whole number in [minimum, maximum], refused in one line otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"{what} ({minimum}-{maximum})" if maximum is not None else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, not {value}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)
port_number = whole_number(1, 65535, "a TCP port")


# ------------------------------------------------------------------------------------------ project and settings


def find_project(start: Path) -> Path | None:
    """The nearest directory at or above `start` whose pyproject.toml is this project's."""
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                if tomllib.loads(pyproject.read_text()).get("project", {}).get("name") == PROJECT_NAME:
                    return folder
            except (tomllib.TOMLDecodeError, OSError):
                continue
    return None


def use_home(quiet: bool = False) -> Path:
    """Point CONSORCIO_HOME at the project's .data (unless set), say which home is used, validate settings."""
    from consorcio_assets.settings import environment_problems, get_settings

    problems = environment_problems()
    if problems:
        raise UsageError(problems[0] + (f" (and {len(problems) - 1} more: consorcio settings)" if problems[1:] else ""))
    if not os.environ.get("CONSORCIO_HOME"):
        project = find_project(Path.cwd())
        if project is None:
            raise UsageError(
                f"not inside the {PROJECT_NAME} project (no pyproject.toml naming it here or above): "
                "cd into it, or set CONSORCIO_HOME"
            )
        os.environ["CONSORCIO_HOME"] = str(project / HOME_DIR)
    try:
        home = get_settings().home
    except ValueError as err:
        raise UsageError(str(err)) from None
    if not quiet:
        print(f"home: {home}", file=sys.stderr)
    return home


def check_reachable() -> None:
    """A configured target or Dagster storage that does not answer is one line naming its variable and redacted
    URL, within seconds: one attempt of at most CONNECT_TIMEOUT seconds, no retry chain, before the heavy imports."""
    from consorcio_assets.orchestration.startup import storage_problem

    for name in ("CONSORCIO_TARGET_URL", "DAGSTER_PG_URL"):
        url = os.environ.get(name)
        if url and (problem := storage_problem(name, url, CONNECT_TIMEOUT)):
            raise Failure(problem)


def instance_env() -> dict[str, str]:
    """The Dagster instance's environment, set in this process too; says when it starts the embedded server."""
    from consorcio_assets.orchestration.instance import enter_instance_env
    from consorcio_assets.settings import get_settings

    settings = get_settings()
    if not settings.target_url or not os.environ.get("DAGSTER_PG_URL"):
        print(
            f"starting the embedded PostgreSQL ({settings.home / 'pg'}; it stays up: consorcio stop)", file=sys.stderr
        )
    return enter_instance_env()


# ------------------------------------------------------------------------------------------ commands


def cmd_seed(args) -> int:
    from consorcio_assets.settings import get_settings
    from consorcio_assets.source.stand_in import seed

    settings = get_settings()
    path = settings.source_path
    if path is None:
        raise UsageError("CONSORCIO_SOURCE_URL is not the embedded stand-in: nothing to seed")
    started = time.perf_counter()
    try:
        counts = seed(path, simulacoes=args.simulacoes, seed=args.seed, force=args.force)
    except FileExistsError as err:
        raise Failure(str(err)) from None
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    for name, n in counts.items():
        print(f"  {name:<20} {n:>12,}")
    print(f"seeded {path} with {total:,} rows in {seconds:.1f}s ({total / seconds:,.0f} rows/s)")
    return 0


def cmd_db_url(args) -> int:
    from consorcio_assets.target.postgres import DAGSTER_DB, TARGET_DB, ensure_database

    print(ensure_database(DAGSTER_DB if args.dagster else TARGET_DB))
    return 0


def load_job(job: str) -> None:
    """Load the definitions and check that `job` is one of them (before anything is created)."""
    from consorcio_assets.tooling.launch import UnknownJob, check_job

    print("loading the Dagster definitions…", file=sys.stderr)
    try:
        check_job(job)
    except UnknownJob as err:
        raise UsageError(str(err)) from None


def cmd_run(args) -> int:
    """Seed the stand-in if missing, run the job with progress lines, print the summary of this run."""
    from consorcio_assets.orchestration.startup import seedable_source
    from consorcio_assets.settings import get_settings
    from consorcio_assets.tooling.launch import UnknownTable, run_and_follow
    from consorcio_assets.tooling.summary import print_run_summary

    load_job(args.job)
    settings = get_settings()
    if (source := seedable_source(settings)) is not None:
        print(f"seeding the embedded source at {source} ({args.simulacoes:,} simulações)")
        cmd_seed(argparse.Namespace(simulacoes=args.simulacoes, seed=args.seed, force=False))
    env = instance_env()
    config = Path(__file__).with_name("run_config.yaml")
    names = getattr(args, "tables", "")
    tables = [t.strip() for t in names.split(",") if t.strip()] or None
    try:
        run_id, code = run_and_follow(args.job, env, settings.home / "logs", config=config, tables=tables)
    except UnknownTable as err:
        raise UsageError(str(err)) from None
    ok = print_run_summary(run_id)
    if code == INTERRUPTED:  # Ctrl-C canceled the run: the shell's convention, as for any interrupted command
        return code
    return 0 if ok and code == 0 else 1


def cmd_summary(args) -> int:
    import dagster as dg

    from consorcio_assets.tooling.summary import latest_run_id, print_run_summary

    instance_env()
    run_id = getattr(args, "run_id", None)
    if run_id is None:
        with dg.DagsterInstance.get() as instance:
            run_id = latest_run_id(instance, args.job)
        if run_id is None:
            load_job(args.job)
            raise Failure(f"no run of {args.job} yet: consorcio run --job {args.job}")
    return 0 if print_run_summary(run_id) else 1


def cmd_verify(args) -> int:
    from consorcio_assets.tooling.verify import main_verify

    return main_verify()


def cmd_bench(args, rest: list[str]) -> int:
    from consorcio_assets.tooling.bench.command import main as bench_main

    return bench_main(rest)


def cmd_docs(args) -> int:
    from consorcio_assets.tooling.docs import write_docs

    for path in write_docs(Path(args.out)):
        print(f"wrote {path}")
    return 0


def cmd_cutover(args) -> int:
    """The cutover rehearsal: GO (exit 0) or NO-GO (exit 1), with the evidence pack's path."""
    from consorcio_assets.cutover.rehearsal import GO, rehearse_current

    if not args.rehearse:
        raise UsageError(
            "only the rehearsal is automated: consorcio cutover --rehearse (the switch itself: README, Cutover)"
        )
    from consorcio_assets.defs.resources import initialized

    evidence, report = rehearse_current(Path(args.out), **initialized("source_db", "target_db", "lake"))
    for reason in evidence.reasons:
        print(f"  {reason}")
    print(f"{evidence.verdict}  report {report} (and {report.with_suffix('.json').name})")
    return 0 if evidence.verdict == GO else 1


def cmd_sql(args) -> int:
    """Print every statement the platform may send to the source, for a DBA to review (each ends with GO)."""
    from consorcio_assets.source.inventory import script

    print(script(args.dialect), end="")
    return 0


def cmd_settings(args) -> int:
    """Every setting the code reads, with its current value (secrets redacted) or the table for the README."""
    from consorcio_assets.settings import REGISTRY, environment_problems, redacted, settings_table

    if args.markdown:
        print(settings_table())
        return 0
    width = max(len(s.name) for s in REGISTRY)
    for s in REGISTRY:
        value = os.environ.get(s.name)
        shown = redacted(s, value) if value else f"(default: {s.default or 'none'})"
        print(f"{s.name:<{width}}  {shown}")
    for problem in environment_problems():
        print(f"error: {problem}", file=sys.stderr)
    return 1 if environment_problems() else 0


def cmd_ui(args) -> int:
    from consorcio_assets.tooling.processes import serve_ui

    env = instance_env()
    return serve_ui(args.host, args.port, env)


def cmd_stop(args) -> int:
    from consorcio_assets.settings import get_settings
    from consorcio_assets.tooling.processes import stop_embedded_postgres
    from consorcio_assets.tooling.warm import stop_server

    home = get_settings().home
    if stopped := stop_server(home):
        print(stopped)
    print(stop_embedded_postgres(home / "pg"))
    return 0


# ------------------------------------------------------------------------------------------ parser


def build_parser() -> Parser:
    parser = Parser(prog="consorcio", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    def command(name: str, text: str, func, **kwargs) -> Parser:
        p = sub.add_parser(name, help=text, description=text, **kwargs)
        p.set_defaults(func=func)
        if kwargs.get("add_help", True):
            p.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
            )
        return p

    def scale(p: Parser, what: str) -> None:
        p.add_argument(
            "--simulacoes", type=positive_int, default=20_000, metavar="N", help=f"simulações to generate{what}"
        )
        p.add_argument(
            "--seed",
            type=non_negative_int,
            default=42,
            metavar="S",
            help="random seed of the generator (same seed, same data)",
        )

    p = command("seed", "build the embedded SQL Server stand-in (DuckDB) with generated data", cmd_seed)
    scale(p, "")
    p.add_argument("--force", action="store_true", help="replace an existing stand-in")

    p = command("db-url", 'print the target PostgreSQL URL, e.g. psql "$(consorcio db-url)"', cmd_db_url)
    p.add_argument("--dagster", action="store_true", help="the Dagster storage database instead")

    p = command(
        "run", "seed the source if missing, run a job with progress lines, print the summary of the run", cmd_run
    )
    scale(p, " when the source does not exist yet")
    p.add_argument("--job", default="migrate_all", help="the Dagster job to run")
    p.add_argument(
        "--tables",
        metavar="T[,T…]",
        default=argparse.SUPPRESS,
        help="reload only these tables (target names, e.g. segmento): their s3_raw, transformed and "
        "aurora assets and their checks, as the UI's Materialize of them (default: every table)",
    )

    p = command("summary", "per-table summary of a run: rows per stage, checks, WARNs, time", cmd_summary)
    p.add_argument("--job", default="migrate_all", help="summarise the latest run of this job")
    p.add_argument("--run-id", default=argparse.SUPPRESS, help="summarise this run (default: the job's latest)")

    command(
        "verify",
        "run every check against the current state (job verify_migration), one line per check; exit 1 on any ERROR",
        cmd_verify,
    )

    command(
        "bench",
        "measure every stage against its floors and the usual tools; `consorcio bench --help` "
        "lists its options (see bench/README.md)",
        cmd_bench,
        add_help=False,
    ).set_defaults(passthrough=True)

    p = command("docs", "regenerate the architecture, data model and runbook docs from the catalog", cmd_docs)
    p.add_argument("--out", default="docs", help="folder to write the docs to")

    p = command("settings", "print every CONSORCIO_*/DAGSTER_* setting with its value (secrets redacted)", cmd_settings)
    p.add_argument("--markdown", action="store_true", help="print the README's table of settings instead")

    p = command("ui", "start the Dagster UI (webserver and daemon) on the PostgreSQL-backed instance", cmd_ui)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=port_number, default=3000, help="port to listen on (must be free)")

    p = command(
        "sql",
        "print every statement the platform sends to the source, each after a comment naming the "
        "check or asset it serves and followed by GO, for a DBA to review",
        cmd_sql,
    )
    p.add_argument(
        "--dialect",
        choices=("mssql", "duckdb"),
        default="mssql",
        help="mssql: SQL Server 2017 as run in production; duckdb: the local stand-in's twins",
    )

    p = command(
        "cutover",
        "rehearse the cutover: source frozen, every check, the application smoke workload "
        "(rolled back); GO exits 0, NO-GO exits 1",
        cmd_cutover,
    )
    p.add_argument("--rehearse", action="store_true", help="run the rehearsal and write the evidence pack")
    p.add_argument("--out", default="reports/cutover", help="folder of the reports")

    command(
        "stop",
        "stop the embedded PostgreSQL and the home's warm server (both stay up between commands otherwise)",
        cmd_stop,
    )
    return parser


#: commands that work without a project or home (they read no local state)
NO_HOME = ("docs", "settings", "bench", "sql")
#: commands whose stdout is for scripts: the home goes unsaid
QUIET = ("db-url", "summary")
#: commands that connect to the target or Dagster's storage: checked reachable first
CONNECTS = ("run", "summary", "verify", "ui", "db-url")
#: commands that move or check data: the source and the pseudonymisation key are checked first
STARTS_WORK = ("run", "verify")


def dispatch(args, rest: list[str]) -> int:
    if args.command not in NO_HOME:
        use_home(quiet=args.command in QUIET)
        private_cli()  # umask 077 for everything this command starts; the home's existing files made private
    if args.command in STARTS_WORK and (problem := first_problem(storage=False)):
        raise UsageError(problem)
    if args.command in CONNECTS:
        check_reachable()
    if getattr(args, "passthrough", False):
        return args.func(args, rest)
    return args.func(args)


def warm_home(argv: list[str]) -> Path | None:
    """The home whose warm server would run this command (`tooling/warm.py`), or None: run it cold. Decided before
    any heavy import: CONSORCIO_HOME, else the project found from here."""
    from consorcio_assets.tooling import warm

    if not warm.enabled() or not argv or argv[0] in warm.COLD_COMMANDS:
        return None
    if home := os.environ.get("CONSORCIO_HOME"):
        return Path(home).resolve()
    project = find_project(Path.cwd())
    return project / HOME_DIR if project else None


def main(argv: list[str] | None = None) -> int:
    """The `consorcio` command. Called without arguments (the console script), it runs in the home's warm server
    when one is up, else here and then starts one; called with arguments (tests, the bench, the warm server's
    child), it runs in this process."""
    if argv is not None:
        return run_command(argv)
    from consorcio_assets.tooling import warm

    argv = sys.argv[1:]
    home = warm_home(argv)
    if home is not None and (code := warm.run_through_server(home, argv)) is not None:
        return code
    environ = dict(os.environ)  # as given: the server's fingerprint is of the same variables
    code = run_command(argv)
    if code != 2 and home is not None and home.is_dir() and not warm.socket_path(home).exists():
        warm.start_server(home, environ)  # not after a usage error: nothing was started, nothing is known to work
        print(
            "started this home's warm server: the next commands skip ~2 s of start-up (consorcio stop ends it)",
            file=sys.stderr,
        )
    return code


def run_command(argv: list[str]) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if not args.debug:
        warnings.simplefilter("ignore")  # Dagster's beta/preview/supersession notes are for developers (--debug)
    root, level = logging.getLogger(), logging.getLogger().level
    if not args.debug:
        root.setLevel(logging.ERROR)  # e.g. a storage retry note per attempt: the outcome is said once, below
    try:
        return dispatch(args, rest)
    except UsageError as err:
        print(f"consorcio {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Failure as err:
        if args.debug:
            raise
        print(f"consorcio {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"consorcio {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # one line for the user; --debug shows where
        if args.debug:
            raise
        text = lost_storage(args.command) or (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"consorcio {args.command}: error: {text} (--debug shows the traceback)", file=sys.stderr)
        return 1
    finally:
        root.setLevel(level)  # called in-process (tests, the bench): the caller's logging is left as it was


def lost_storage(command: str) -> str | None:
    """After an unexpected error: a database the command needs that no longer answers (say PostgreSQL crashed
    mid-run) is the cause to name — its variable and redacted URL — rather than the last symptom."""
    from consorcio_assets.orchestration.startup import storage_problem

    if command not in CONNECTS:
        return None
    for name in ("CONSORCIO_TARGET_URL", "DAGSTER_PG_URL"):
        url = os.environ.get(name)
        if url and (problem := storage_problem(name, url, CONNECT_TIMEOUT)):
            return problem
    return None


if __name__ == "__main__":
    sys.exit(main())
