"""Runs that belong to the code location, started outside the UI (`consorcio run`, `consorcio verify`, the bench).

`dagster job execute -m …` records a run with a code origin but no remote origin, so the UI (which lists a job's
runs by the `dagster/repository` tag derived from the remote origin) shows none of them. Here a run is created
the way the webserver creates one — with the remote origin of `workspace.yaml`'s code location — and then
executed in a process of its own (`python -m consorcio_assets.tooling.launch --run-id …`), as the UI's run launcher does;
`run_and_follow` forks that process from the caller instead when it can (`forked_run.ForkedRun`: the definitions
are already built there).

    python -m consorcio_assets.tooling.launch --job migrate_all [--config run_config.yaml] [--tags JSON] [--tables a,b]
    python -m consorcio_assets.tooling.launch --run-id <id of a run created by `create_run`>
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import dagster as dg

from consorcio_assets import PROJECT_ROOT

MODULE = "consorcio_assets.definitions"
ATTRIBUTE = "defs"
REPO_ROOT = PROJECT_ROOT

WORKSPACE = REPO_ROOT / "workspace.yaml"
#: the UI's code location; workspace.yaml names it, and a run's remote origin must carry the same name
LOCATION = "consorcio_migration"


class UnknownJob(ValueError):
    pass


class UnknownTable(ValueError):
    pass


@lru_cache(maxsize=1)
def reconstructable_repository():
    """The repository as `dagster job execute -m` finds it (the module's Definitions, by attribute)."""
    from dagster._cli.workspace.cli_target import get_repository_python_origin_from_cli_opts
    from dagster._utils.hosted_user_process import recon_repository_from_origin
    from dagster_shared.cli import PythonPointerOpts

    # naming the attribute (`defs`, the one discovery finds) gives the same origin without building the definitions
    origin = get_repository_python_origin_from_cli_opts(
        PythonPointerOpts(module_name=MODULE, attribute=ATTRIBUTE, working_directory=str(REPO_ROOT))
    )
    return recon_repository_from_origin(origin)


@lru_cache(maxsize=1)
def repository_definition():
    """The definitions, built once per process (each build imports and assembles every module under defs/)."""
    return reconstructable_repository().get_definition()


def job_names() -> list[str]:
    return sorted(repository_definition().job_names)


def check_job(job: str) -> None:
    """Raise UnknownJob naming the jobs there are (before anything is created)."""
    names = job_names()
    if job not in names:
        raise UnknownJob(f"job {job!r} does not exist (jobs: {', '.join(names)})")


def location_origin():
    """The code location origin the webserver builds from workspace.yaml (same class, same name)."""
    from dagster._core.remote_origin import ManagedGrpcPythonEnvCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    if WORKSPACE.exists():
        from dagster._core.workspace.load import location_origins_from_yaml_paths

        origins = [o for o in location_origins_from_yaml_paths([str(WORKSPACE)]) if o.location_name == LOCATION]
        if origins:
            return origins[0]
    target = LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE, working_directory=str(REPO_ROOT))
    return ManagedGrpcPythonEnvCodeLocationOrigin(loadable_target_origin=target, location_name=LOCATION)


def create_run(
    instance: dg.DagsterInstance,
    job: str,
    run_config: Mapping | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
    tables: Sequence[str] | None = None,
):
    """A NOT_STARTED run of `job` with the remote origin of the code location (what the UI lists). With
    `tables`, only their reload chain (`reload_selection`), as the UI's "Materialize" of those assets runs it."""
    from dagster._core.remote_origin import RemoteRepositoryOrigin

    check_job(job)
    recon_job = reconstructable_repository().get_reconstructable_job(job)
    job_def = repository_definition().get_job(job)
    selection = reload_selection(job_def, tables) if tables else None
    remote_repo = RemoteRepositoryOrigin(
        code_location_origin=location_origin(), repository_name=repository_definition().name
    )
    return instance.create_run_for_job(
        job_def,
        run_id=run_id,
        run_config=dict(run_config or {}),
        tags={**job_def.tags, **(tags or {})},
        asset_selection=selection,
        remote_job_origin=remote_repo.get_job_origin(job),
        job_code_origin=recon_job.get_python_origin(),
    )


def reload_selection(job_def, tables: Sequence[str]) -> frozenset:
    """The assets a one-table reload materializes: each table's s3_raw, transformed and aurora assets (their
    checks come with them). A name that is no table of the job is refused, naming the tables there are."""
    from consorcio_assets.common.stages import AURORA, S3_RAW, TRANSFORMED

    keys = job_def.asset_layer.asset_graph.get_all_asset_keys()
    known = sorted({k.path[-1] for k in keys if k.path[0] == AURORA})
    unknown = [t for t in tables if t not in known]
    if unknown:
        raise UnknownTable(f"no table {', '.join(map(repr, unknown))} in {job_def.name} (tables: {', '.join(known)})")
    return frozenset(
        dg.AssetKey([stage, t])
        for t in tables
        for stage in (S3_RAW, TRANSFORMED, AURORA)
        if dg.AssetKey([stage, t]) in keys
    )


def execute(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Execute a created run in this process (its steps in their own processes); True on success."""
    from dagster._core.execution.api import execute_run
    from dagster._utils.hosted_user_process import recon_job_from_origin
    from dagster._utils.interrupts import capture_interrupts

    run = instance.get_run_by_id(run_id)
    if run is None:
        raise LookupError(f"no run {run_id} in the instance")
    with capture_interrupts():
        result = execute_run(recon_job_from_origin(run.job_code_origin), run, instance)
    return result.success


def run_log(log_dir: Path, job: str, run_id: str) -> Path:
    """Where the console output of the process executing a run goes."""
    return log_dir / f"{job}-{run_id[:8]}.log"


def run_and_follow(
    job: str,
    env: Mapping[str, str],
    log_dir: Path,
    config: Path | None = None,
    tags: Mapping[str, str] | None = None,
    out=print,
    tables: Sequence[str] | None = None,
) -> tuple[str, int]:
    """Create a run of `job`, execute it in a child process (its console output to a log file), print its
    progress from the event log while it runs; (run id, the child's exit code). The run is this one: callers
    summarise it by id, never as "the job's latest"."""
    import signal
    import subprocess
    import threading
    import time

    from consorcio_assets.orchestration.runs import (
        CANCEL_GRACE_SECONDS,
        HOST_TAG,
        OWNER_ENV,
        command_identity,
        die_with_parent,
        hostname,
        mark_dead_runs,
    )
    from consorcio_assets.tooling.progress import follow

    with dg.DagsterInstance.get() as instance:
        for line in mark_dead_runs(instance):
            out(line)
        run = create_run(
            instance,
            job,
            load_config(str(config) if config else None),
            {**(tags or {}), HOST_TAG: hostname()},
            tables=tables,
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        log = run_log(log_dir, job, run.run_id)
        out(f"run {run.run_id} of {job} created; starting its process (Dagster's own output: {log})")
        started = time.time()
        with log.open("w") as sink:
            # Its own session (a terminal's Ctrl-C reaches it only through here), dying with this process, and
            # every process of the run watching this one (CONSORCIO_RUN_OWNER): nothing outlives a killed command.
            child_env = {**env, OWNER_ENV: command_identity()}
            if threading.active_count() == 1:  # a fork keeps the definitions this process built (see ForkedRun)
                from consorcio_assets.tooling.forked_run import ForkedRun

                child = ForkedRun(run.run_id, child_env, sink)
            else:
                child = subprocess.Popen(
                    [sys.executable, "-m", "consorcio_assets.tooling.launch", "--run-id", run.run_id],
                    env=child_env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                    start_new_session=True,
                )
            try:
                follow(instance, run.run_id, alive=lambda: child.poll() is None, out=out, started=started)
                code = child.wait()
            except KeyboardInterrupt:
                out("interrupted: canceling the run (Ctrl-C again to stop it at once)")
                instance.report_run_canceling(
                    instance.get_run_by_id(run.run_id), message="Canceling: interrupted (Ctrl-C)"
                )
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(CANCEL_GRACE_SECONDS)
                except (KeyboardInterrupt, subprocess.TimeoutExpired):
                    child.kill()
                    child.wait()
                ended = instance.get_run_by_id(run.run_id)
                if ended is not None and not ended.is_finished:
                    instance.report_run_canceled(ended, message="Run canceled: interrupted (Ctrl-C)")
                return run.run_id, 130
        ended = instance.get_run_by_id(run.run_id)
        if ended is not None and not ended.is_finished:
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            instance.report_run_failed(ended, f"Run failed: its process ended ({how}) before the run did")
        return run.run_id, code


def load_config(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    return yaml.safe_load(Path(path).read_text()) or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m consorcio_assets.tooling.launch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", help="create a run of this job, then execute it")
    which.add_argument("--run-id", help="execute this already created run")
    parser.add_argument("--config", "-c", help="run config YAML (with --job)")
    parser.add_argument("--tags", help="JSON object of run tags (with --job)")
    parser.add_argument("--tables", help="comma-separated tables: only their reload chain (with --job)")
    args = parser.parse_args(argv)
    with dg.DagsterInstance.get() as instance:
        run_id = args.run_id
        if args.job:
            try:
                run = create_run(
                    instance,
                    args.job,
                    load_config(args.config),
                    json.loads(args.tags or "{}"),
                    tables=args.tables.split(",") if args.tables else None,
                )
            except (UnknownJob, UnknownTable) as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            run_id = run.run_id
            print(f"run {run_id} of {args.job}", flush=True)
        return 0 if execute(instance, run_id) else 1


if __name__ == "__main__":
    sys.exit(main())
