"""Runtime settings, read from the environment so the same code runs locally and on AWS.

CONSORCIO_ENV       local (default: embedded stand-ins) or aws (real DMS, Glue, S3, Aurora)
CONSORCIO_HOME      where local state lives (default: ./.data)
CONSORCIO_SOURCE_URL  SQLAlchemy URL of the source (default: the DuckDB stand-in under CONSORCIO_HOME)
CONSORCIO_TARGET_URL  PostgreSQL URL of the target (default: embedded pgserver under CONSORCIO_HOME/pg)
CONSORCIO_LAKE_URI    root of the lake: file://... or s3://bucket/prefix (default: CONSORCIO_HOME/lake)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    env: str
    home: Path
    source_url: str
    target_url: str | None
    lake_uri: str

    @property
    def is_aws(self) -> bool:
        return self.env == "aws"

    @property
    def source_path(self) -> Path | None:
        """The DuckDB file behind the source URL, when the source is the embedded stand-in."""
        prefix = "duckdb:///"
        return Path(self.source_url[len(prefix) :]) if self.source_url.startswith(prefix) else None


def default_source_path(home: Path) -> Path:
    return home / "source" / "consorcio_simulacao.duckdb"


def get_settings() -> Settings:
    env = os.environ.get("CONSORCIO_ENV", "local").lower()
    if env not in ("local", "aws"):
        raise ValueError(f"CONSORCIO_ENV must be 'local' or 'aws', not {env!r}")
    home = Path(os.environ.get("CONSORCIO_HOME", ".data")).resolve()
    source_url = os.environ.get("CONSORCIO_SOURCE_URL") or f"duckdb:///{default_source_path(home)}"
    lake = os.environ.get("CONSORCIO_LAKE_URI") or (home / "lake").as_uri()
    if env == "aws" and not lake.startswith("s3://"):
        raise ValueError("CONSORCIO_ENV=aws needs CONSORCIO_LAKE_URI=s3://bucket/prefix")
    return Settings(env, home, source_url, os.environ.get("CONSORCIO_TARGET_URL") or None, lake)


# -- the registry: every environment variable the code reads, declared once ---------------------------------

BOTH, LOCAL, AWS = ("local", "aws"), ("local",), ("aws",)

# The containers of the AWS deployment (infra/dagster.tf); a run is a task of the code server's definition.
CODE_SERVER, WEBSERVER, DAEMON = "code-server", "webserver", "daemon"
SERVICES = (CODE_SERVER, WEBSERVER, DAEMON)
CODE, ORCHESTRATOR = (CODE_SERVER,), (WEBSERVER, DAEMON)


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default, what it means, the modes that read it, and how to check it."""

    name: str
    default: str
    meaning: str
    modes: tuple[str, ...] = BOTH
    secret: bool = False
    choices: tuple[str, ...] = ()
    kind: type = str  # str, int (≥ 1) or float (> 0)
    zero_ok: bool = False  # an int or float that may also be 0
    internal: bool = False  # set by the code for its own subprocesses, never by a user
    min_bytes: int = 0  # a secret shorter than this is refused (its length is told, never its value)
    required_in_aws: tuple[str, ...] = ()  # the deployment's containers that refuse to start without it

    def problem(self, value: str) -> str | None:
        """Why `value` is not acceptable for this setting, or None."""
        if self.choices and value.lower() not in self.choices:
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        if self.min_bytes and len(value.encode()) < self.min_bytes:
            return (
                f"has {len(value.encode())} bytes, fewer than {self.min_bytes}: a shorter key lets anyone "
                "recompute the CPF/CNPJ tokens; set a random value of at least that length"
            )
        if self.kind in (int, float):
            try:
                number = self.kind(value)
            except ValueError:
                return f"must be {'a whole number' if self.kind is int else 'a number'}, not {value!r}"
            if number < 0 or (number == 0 and not self.zero_ok):
                return f"must be {'zero or more' if self.zero_ok else 'positive'}, not {value!r}"
        return None


REGISTRY: tuple[Setting, ...] = (
    Setting(
        "CONSORCIO_ENV",
        "local",
        "`local` (embedded stand-ins) or `aws` (real DMS, Glue, S3, Aurora)",
        choices=("local", "aws"),
        required_in_aws=SERVICES,
    ),
    Setting("CONSORCIO_HOME", ".data", "where local state lives (stand-in, lake, embedded PostgreSQL, secrets)", LOCAL),
    Setting(
        "CONSORCIO_WARM",
        "1",
        "`0`: every `consorcio` command starts cold instead of in the home's warm server (imports and definitions "
        "already loaded; `consorcio stop` ends it)",
        choices=("0", "1"),
    ),
    Setting(
        "CONSORCIO_SOURCE_URL",
        "duckdb:///<home>/source/consorcio_simulacao.duckdb",
        "SQLAlchemy URL of the source (SQL Server in aws mode)",
        secret=True,
        required_in_aws=CODE,
    ),
    Setting(
        "CONSORCIO_TARGET_URL",
        "the embedded pgserver under <home>/pg",
        "PostgreSQL URL of the target (Aurora); in aws mode the Glue job reads its secret instead",
        secret=True,
        required_in_aws=CODE,
    ),
    Setting(
        "CONSORCIO_LAKE_URI",
        "file://<home>/lake",
        "root of the lake: `file://…` or `s3://bucket/prefix`",
        required_in_aws=CODE,
    ),
    Setting(
        "CONSORCIO_PIPES_URI",
        "<lake>/_glue/pipes",
        "`s3://bucket[/prefix]` for Dagster Pipes context and messages of Glue runs (Terraform output `pipes_uri`)",
        AWS,
        required_in_aws=CODE,
    ),
    Setting(
        "CONSORCIO_TARGET_SECRET_ID",
        "",
        "Secrets Manager secret of the Aurora cluster (the Glue job's login)",
        AWS,
        required_in_aws=CODE,
    ),
    Setting("CONSORCIO_DMS_TASK_ARN", "", "the DMS full-load replication task", AWS, required_in_aws=CODE),
    Setting(
        "CONSORCIO_DMS_TARGET_ENDPOINT_ARN", "", "its S3 target endpoint: the project's S3Settings are applied", AWS
    ),
    Setting("CONSORCIO_DMS_S3_ROLE_ARN", "", "the endpoint's ServiceAccessRoleArn, sent with the S3Settings", AWS),
    Setting(
        "CONSORCIO_GLUE_JOB_NAME", "consorcio-glue-job", "the Glue job that loads a table", AWS, required_in_aws=CODE
    ),
    Setting(
        "CONSORCIO_GLUE_MAX_CONCURRENT_RUNS", "3", "table loads at once (keep ≤ the job's MaxConcurrentRuns)", kind=int
    ),
    Setting("CONSORCIO_GLUE_COPY_STREAMS", "2", "parallel binary COPY connections per table", kind=int),
    Setting(
        "CONSORCIO_CHECK_PARALLEL_WORKERS",
        "0",
        "PostgreSQL parallel workers per check query (`max_parallel_workers_per_gather` of the checks' sessions): "
        "the checks already run several queries at once, so workers only add CPU; raise it on an Aurora instance "
        "with cores to spare",
        kind=int,
        zero_ok=True,
    ),
    Setting(
        "CONSORCIO_GLUE_ON_INVALID",
        "fail",
        "`fail` the run on a row that violates its target type, or `reject` it to consorcio.consorcio_rejects",
        choices=("fail", "reject"),
    ),
    Setting("CONSORCIO_GLUE_WORKER_TYPE", "the job definition's", "Glue worker type per run", AWS),
    Setting("CONSORCIO_GLUE_NUMBER_OF_WORKERS", "the job definition's", "Glue workers per run", AWS, kind=int),
    Setting(
        "CONSORCIO_GLUE_MAX_CAPACITY", "the job definition's", "Glue DPUs per run (instead of workers)", AWS, kind=float
    ),
    Setting("CONSORCIO_GLUE_TIMEOUT_MINUTES", "the job definition's", "Glue run timeout", AWS, kind=int),
    Setting("CONSORCIO_GLUE_PYTHON_MODULES", "the job definition's", "`--additional-python-modules` for each run", AWS),
    Setting("CONSORCIO_GLUE_SCRIPT", "the packaged job", "run another job script locally (development only)", LOCAL),
    Setting(
        "CONSORCIO_GLUE_TARGET_URL",
        "",
        "the target URL handed to a local Glue subprocess (never an argument)",
        LOCAL,
        secret=True,
        internal=True,
    ),
    Setting(
        "CONSORCIO_RUN_OWNER",
        "",
        "`<pid>:<start>` of the `consorcio run` process that owns a run: its processes end when it dies",
        LOCAL,
        internal=True,
    ),
    Setting(
        "CONSORCIO_SPARK_MASTER",
        "local[2]",
        "Spark master of a Glue job run with `--spark on` outside "
        "spark-submit (tests and the benchmark; Glue itself runs under spark-submit)",
        LOCAL,
    ),
    Setting(
        "CONSORCIO_PII_HMAC_KEY",
        "a random key in <home>/secrets/pii_hmac.key",
        "key of the CPF/CNPJ tokens in the analytics schema (≥ 32 bytes; Secrets Manager in aws mode)",
        secret=True,
        min_bytes=32,
        required_in_aws=CODE,
    ),
    Setting(
        "CONSORCIO_BENCH_TARGET_URL",
        "a fresh database on the embedded server",
        "the benchmark's target PostgreSQL",
        LOCAL,
        secret=True,
    ),
    Setting(
        "CONSORCIO_BENCH_DAGSTER_URL",
        "a fresh database on the embedded server",
        "the benchmark's Dagster storage",
        LOCAL,
        secret=True,
    ),
    Setting(
        "DAGSTER_HOME", "<home>/dagster_home", "Dagster instance directory (its dagster.yaml)", required_in_aws=SERVICES
    ),
    Setting(
        "DAGSTER_PG_URL",
        "database `dagster` on the embedded server",
        "PostgreSQL URL of Dagster's run, event-log and schedule storage",
        secret=True,
        required_in_aws=SERVICES,
    ),
    Setting(
        "DAGSTER_GRPC_HOST",
        "",
        "host of the code location's gRPC server (deploy/workspace.yaml)",
        AWS,
        required_in_aws=ORCHESTRATOR,
    ),
    Setting("DAGSTER_GRPC_PORT", "", "its port", AWS, kind=int, required_in_aws=ORCHESTRATOR),
    Setting(
        "DAGSTER_RUN_TASK_DEFINITION",
        "",
        "task definition (family) of the code server, which the EcsRunLauncher runs once per run (deploy/dagster.yaml)",
        AWS,
        required_in_aws=SERVICES,
    ),
    Setting(
        "DAGSTER_EVENT_BATCH_SIZE",
        "1000",
        "a run's planned events written in one statement per this many (set by `consorcio` and the image)",
        internal=True,
    ),
    Setting("DAGSTER_DISABLE_TELEMETRY", "unset", "`1` keeps Dagster from sending telemetry", internal=True),
)
SETTINGS_BY_NAME = {s.name: s for s in REGISTRY}


def declared(name: str) -> Setting:
    """The registry entry of `name`; reading an undeclared variable is a programming error."""
    try:
        return SETTINGS_BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name} is not declared in consorcio_assets.settings.REGISTRY") from None


def required_in(service: str) -> tuple[Setting, ...]:
    """The settings the deployment's `service` container cannot start without."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    return tuple(s for s in REGISTRY if service in s.required_in_aws)


def environment_problems(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per set variable whose value is unusable, naming it: checked before any work starts."""
    environ = os.environ if environ is None else environ
    problems = []
    for setting in REGISTRY:
        value = environ.get(setting.name)
        if value not in (None, "") and (why := setting.problem(value)):
            problems.append(f"{setting.name} {why}")
    return problems


def redacted(setting: Setting, value: str | None) -> str:
    """A value fit to print: secrets hidden, the password of a URL hidden, unset shown as such."""
    if value in (None, ""):
        return "(unset)"
    if "://" in value and "@" in value:
        from sqlalchemy.engine import make_url

        try:
            return make_url(value).render_as_string(hide_password=True)
        except Exception:
            return "***"
    return "***" if setting.secret and "://" not in value else value


def settings_table() -> str:
    """The Markdown table of every setting (the README carries it; a test keeps the two equal)."""
    rows = ["| variable | default | modes | meaning |", "|---|---|---|---|"]
    for s in REGISTRY:
        if s.internal:
            continue
        modes = "both" if s.modes == BOTH else s.modes[0]
        extra = f" ({'/'.join(s.choices)})" if s.choices else ""
        rows.append(
            f"| `{s.name}` | {s.default or '—'} | {modes} | {s.meaning}{extra}{'; secret' if s.secret else ''} |"
        )
    return "\n".join(rows)
