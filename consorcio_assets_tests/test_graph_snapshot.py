"""The Dagster graph as a reviewed file: every asset (its group and upstream assets), asset check, job, schedule
and sensor the code location defines, one per line and sorted, compared with snapshots/graph.txt. A change to the
graph then shows up as a diff in review; when it is intended, refresh the file with
`pytest consorcio_assets_tests/test_graph_snapshot.py --snapshot-update` and commit it."""

from __future__ import annotations

import difflib
from pathlib import Path

import dagster as dg
import pytest

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "graph.txt"
REFRESH = "pytest consorcio_assets_tests/test_graph_snapshot.py --snapshot-update"


def graph_lines(defs: dg.Definitions) -> list[str]:
    """The graph, one sorted line per asset, check, job, schedule and sensor."""
    graph = defs.resolve_asset_graph()
    lines = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        upstream = ", ".join(sorted(k.to_user_string() for k in node.parent_keys))
        kind = "asset" if node.is_materializable else "observable" if node.is_observable else "external"
        lines.append(f"{kind} {key.to_user_string()} [{node.group_name}] <- {upstream or '-'}")
    lines += [f"check {c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys]
    lines += [f"job {job.name}" for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    lines += [f"schedule {s.name} '{s.cron_schedule}' -> {_job_name(s.job_name)}" for s in defs.schedules or []]
    lines += [f"sensor {s.name}" for s in defs.sensors or []]
    return sorted(lines)


def _job_name(name: str) -> str:
    """Dagster names the job of a schedule that targets assets itself (`__anonymous_asset_job_...`)."""
    return "(its assets)" if name.startswith("__") else name


def diff(expected: list[str], actual: list[str]) -> str:
    return "\n".join(
        difflib.unified_diff(expected, actual, "snapshots/graph.txt", "the loaded Definitions", lineterm="")
    )


@pytest.fixture(scope="module")
def actual() -> list[str]:
    from consorcio_assets.definitions import defs

    return graph_lines(defs())


def test_the_graph_matches_its_reviewed_snapshot(actual, request):
    if request.config.getoption("snapshot_update"):
        SNAPSHOT.write_text("\n".join(actual) + "\n")
    expected = SNAPSHOT.read_text().splitlines() if SNAPSHOT.exists() else []
    assert actual == expected, (
        f"the Dagster graph differs from {SNAPSHOT.name}; if the change is intended, "
        f"run `{REFRESH}` and commit the file:\n{diff(expected, actual)}"
    )


def test_a_changed_graph_fails_with_its_diff_and_the_refresh_command(actual):
    """What a reviewer sees: the added and removed lines, not just 'differs'."""
    changed = [line for line in actual if not line.startswith("job migrate_all")] + ["job migrate_everything"]
    text = diff(actual, sorted(changed))
    assert "-job migrate_all" in text and "+job migrate_everything" in text
    assert any(line.startswith("job migrate_all") for line in actual), "the snapshot lists the jobs"
    assert sum(line.startswith("check ") for line in actual) >= 100, "the snapshot lists every asset check"
