"""Latency where users wait: `make run` warm, a one-table reload and `consorcio verify`, at the default scale.

Each is the user's own command (`python -m consorcio_assets.tooling.cli ...`), timed from outside from its start to its
exit, start-up included: the run is created in the instance and executed as the UI's launch does, so the figure is
what a user waits for. They run in a home at the default scale (20,000 simulações, the scale of `make run`),
the bench home itself when the bench runs at that scale, else `<bench home>/../latency-20000`; "warm" means the
source is seeded and PostgreSQL is up, as on a second `make run`. Order: `run` (which leaves every stage
loaded), then the reload of one small table, then `verify` of that state.

Each command is timed twice: cold (CONSORCIO_WARM=0: a fresh interpreter imports Dagster and builds the
definitions, `cold_seconds`) and through the home's warm server (`seconds`, what every command after the first
waits for; the server is started, warmed up and stopped around these three, outside the timings).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from consorcio_assets.tooling import warm
from consorcio_assets.tooling.bench.peak_rss import run_measured
from consorcio_assets.tooling.bench.runner import BenchError, ensure_source, prepare

#: the scale of `make run` and `consorcio verify` (`consorcio run --simulacoes` default)
DEFAULT_SIMULACOES = 20_000
#: the small table a user reloads (6 rows)
RELOAD_TABLE = "segmento"
#: figure -> the command's arguments after `consorcio`
COMMANDS: dict[str, list[str]] = {
    "make_run_warm": ["run"],
    "single_table_reload": ["run", "--tables", RELOAD_TABLE],
    "verify_default": ["verify"],
}
#: how long the warm server may take to import and build the definitions before the bench gives up on it
WARM_UP_SECONDS = 180
#: (label, key, op, threshold) for `report.TARGETS`: the issue's targets, judged at any bench scale (they are
#: measured at the default scale whatever the bench's)
TARGETS = (
    ("one-table reload (segmento, 6 rows) ≤ 5 s", "latency.single_table_reload.seconds", "<=", 5.0),
    ("`make run` warm at the default scale ≤ 20 s", "latency.make_run_warm.seconds", "<=", 20.0),
    ("`consorcio verify` at the default scale ≤ 5 s", "latency.verify_default.seconds", "<=", 5.0),
)


class LatencyError(BenchError):
    pass


def latency_config(config):
    """The bench config of the latency home: the bench's own at the default scale, a sibling home otherwise."""
    if config.simulacoes == DEFAULT_SIMULACOES:
        return config
    home = config.bench_home.parent / f"latency-{DEFAULT_SIMULACOES}"
    return dataclasses.replace(config, simulacoes=DEFAULT_SIMULACOES, home=home)


def timed(env: Mapping[str, str], args: list[str]) -> dict:
    """One command of the CLI, as a user runs it: its wall seconds (exit 0 required) and its peak RSS."""
    measured = run_measured([sys.executable, "-m", "consorcio_assets.tooling.cli", *args], env=dict(env))
    if measured.returncode != 0:
        tail = (measured.stdout + measured.stderr)[-3000:]
        raise LatencyError(f"consorcio {' '.join(args)} failed (exit {measured.returncode}):\n{tail}")
    return {"seconds": round(measured.wall_seconds, 3), "peak_rss_mb": round(measured.peak_rss_mb, 1)}


@contextmanager
def warm_server(env: Mapping[str, str]) -> Iterator[None]:
    """The latency home's warm server, up and warmed before the block, stopped after it."""
    home = Path(env["CONSORCIO_HOME"])
    warm.stop_server(home)  # one left by an earlier command may be stale or another's
    warm.start_server(home, dict(env))
    deadline = time.monotonic() + WARM_UP_SECONDS
    while not warm.socket_path(home).exists():
        if time.monotonic() > deadline:
            raise LatencyError(f"the warm server did not start within {WARM_UP_SECONDS} s: see {home}/logs/warm.log")
        time.sleep(0.1)
    try:
        yield
    finally:
        warm.stop_server(home)


def measure(config) -> dict:
    """One measurement of each figure, cold then warm (the bench takes the median over its runs)."""
    latency = latency_config(config)
    env = prepare(latency)
    ensure_source(latency, env)  # seeded beforehand: seeding is not part of a warm run
    cold = {name: timed({**env, warm.SWITCH_ENV: "0"}, args) for name, args in COMMANDS.items()}
    hot_env = {**env, warm.SWITCH_ENV: "1"}
    with warm_server(hot_env):
        hot = {name: timed(hot_env, args) for name, args in COMMANDS.items()}
    return {
        name: {
            "seconds": hot[name]["seconds"],
            "cold_seconds": cold[name]["seconds"],
            "cold_peak_rss_mb": cold[name]["peak_rss_mb"],
        }
        for name in COMMANDS
    }


def figures(run: Mapping) -> dict[str, float]:
    """A bench run's latency figures, flat (`latency.<name>.seconds`, `….cold_seconds`), for `report.derive`."""
    out = {}
    for name, measured in run.get("latency", {}).items():
        out[f"latency.{name}.seconds"] = measured["seconds"]
        if "cold_seconds" in measured:  # runs before the warm server had one figure only
            out[f"latency.{name}.cold_seconds"] = measured["cold_seconds"]
    return out
