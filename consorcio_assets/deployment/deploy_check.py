"""The image's entrypoint: refuse to start a deployment container whose settings are missing or unusable.

    python -m consorcio_assets.deployment.deploy_check <command...>

The command decides which container this is (the run launcher replaces the code server's command with
`dagster api execute_run ...`, so a run is checked like the code server). Every setting the registry marks
`required_in_aws` for that container must be set and valid, and CONSORCIO_ENV must be `aws`; otherwise one line
on stderr names what is wrong, nothing else starts, and the exit status is 2. Then the command replaces this
process (exec), so it receives ECS's signals directly. Values are never printed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from consorcio_assets.settings import CODE_SERVER, DAEMON, SETTINGS_BY_NAME, WEBSERVER, required_in

#: Command prefix -> the container it runs in (first match wins).
COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("dagster", "code-server"), CODE_SERVER),
    (("dagster", "api"), CODE_SERVER),  # a run or step worker, launched from the code server's task definition
    (("dagster-webserver",), WEBSERVER),
    (("dagster-daemon",), DAEMON),
)
EXIT_MISCONFIGURED = 2
#: URL schemes the image can use: dagster-postgres interpolates like psycopg2 (SQLAlchemy 2.1 would pick psycopg 3
#: for a bare postgresql://), and the image ships pymssql as its SQL Server driver.
SCHEMES = {
    "DAGSTER_PG_URL": ("postgresql+psycopg2://",),
    "CONSORCIO_SOURCE_URL": ("mssql+pymssql://",),
    "CONSORCIO_TARGET_URL": ("postgresql://", "postgres://"),
}
EXIT_NOT_RUNNABLE = 127


def service_of(command: Sequence[str]) -> str:
    for prefix, service in COMMANDS:
        if tuple(command[: len(prefix)]) == prefix:
            return service
    known = "; ".join(" ".join(p) for p, _ in COMMANDS)
    raise ValueError(f"unknown command {' '.join(command[:2])!r}: the image runs one of {known}")


def problems(service: str, environ: Mapping[str, str]) -> list[str]:
    """What keeps `service` from starting, one short phrase per setting (names only, never values)."""
    found = []
    for setting in required_in(service):
        value = environ.get(setting.name, "")
        if not value.strip():
            found.append(f"{setting.name} is not set")
        elif why := setting.problem(value):
            found.append(f"{setting.name} {why if not setting.secret else 'is unusable'}")
        elif setting.name in SCHEMES and not value.startswith(SCHEMES[setting.name]):
            found.append(f"{setting.name} must start with {' or '.join(SCHEMES[setting.name])}")
    env = environ.get("CONSORCIO_ENV", "").lower()
    if env and env != "aws" and SETTINGS_BY_NAME["CONSORCIO_ENV"] in required_in(service):
        found.append(f"CONSORCIO_ENV must be aws in the deployment, not {env!r}")
    return found


def check(command: Sequence[str], environ: Mapping[str, str]) -> str | None:
    """The one line explaining why `command` may not start, or None."""
    try:
        service = service_of(command)
    except ValueError as err:
        return f"deploy_check: {err}"
    found = problems(service, environ)
    return f"deploy_check: {service} cannot start: {'; '.join(found)}" if found else None


def main(argv: Sequence[str] | None = None) -> int:
    command = list(sys.argv[1:] if argv is None else argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print(
            "deploy_check: no command given (usage: python -m consorcio_assets.deployment.deploy_check <command...>)",
            file=sys.stderr,
        )
        return EXIT_MISCONFIGURED
    if line := check(command, os.environ):
        print(line, file=sys.stderr)
        return EXIT_MISCONFIGURED
    sys.stdout.flush()
    try:
        os.execvp(command[0], command)
    except OSError as err:
        print(f"deploy_check: cannot run {command[0]!r}: {err.strerror}", file=sys.stderr)
        return EXIT_NOT_RUNNABLE
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
