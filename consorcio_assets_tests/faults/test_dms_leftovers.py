"""A DMS load SIGKILLed mid-file leaves its `_dms/staging/<id>` (and possibly `_dms/trash/<id>`) tree: the next
load removes every tree whose owner is dead, whichever tables it loads, and leaves a live load's trees alone."""

from __future__ import annotations

import signal
from pathlib import Path

from consorcio_assets.catalog import catalog
from consorcio_assets.common.lake_zones import Lake
from consorcio_assets.dms import engine, layout
from consorcio_assets.dms.mappings import table_mappings
from consorcio_assets.dms.settings_files import load_settings
from consorcio_assets_tests.faults.support import digest, missing
from consorcio_assets_tests.faults.test_process_faults import kill_engine_mid_file


def _trees(dms: Path) -> list[str]:
    return sorted(
        f"{kind}/{p.name}" for kind in ("staging", "trash") if (dms / kind).is_dir() for p in (dms / kind).iterdir()
    )


def test_dms_killed_leaves_no_tree_after_the_next_load(small_source, tmp_path, fault_case):
    fault_case.expect(
        "local DMS engine SIGKILLed, then a load of another table",
        "the dead load's _dms/staging and _dms/trash trees are removed by the next load; a live load's trees are kept",
    )
    lake = Lake((tmp_path / "lake").as_uri())
    dms = tmp_path / "lake" / "_dms"
    settings = load_settings().with_endpoint(RowGroupLength=100)
    source = f"duckdb:///{small_source}"
    engine.run_full_load(
        table_mappings([catalog()["SimulacaoParcela"]]), source_url=source, lake=lake, settings=settings
    )
    before = digest(tmp_path / "lake" / "raw")
    returncode = kill_engine_mid_file(small_source, lake)
    dead = _trees(dms)
    assert dead and all(t.startswith("staging/") for t in dead)
    (dms / "trash" / dead[0].split("/")[1] / "dbo").mkdir(parents=True)  # a kill between the two renames
    live = engine.Workspace(*lake.filesystem(), load_id="live-load")
    (dms / "staging" / "live-load" / "dbo" / "Segmento").mkdir(parents=True)
    with engine.lease(live):  # another load, running
        again = engine.run_full_load(
            table_mappings([catalog()["Segmento"]]), source_url=source, lake=lake, settings=settings
        ).tables["Segmento"]
        left = _trees(dms)
    assert again.state == layout.COMPLETED
    lost = missing(before.items(), digest(tmp_path / "lake" / "raw").items())
    fault_case.saw(
        f"engine {signal.Signals(-returncode).name}; {len(dead) + 1} dead tree(s) removed by the "
        f"next load (of another table); the live load's tree kept",
        lost,
    )
    assert left == ["staging/live-load"] and lost == 0
    assert sorted(p.name for p in (dms / "owners").iterdir()) == []  # the live lease is gone with its load


def test_a_load_removes_its_trees_while_it_still_holds_its_lease(small_source, tmp_path, monkeypatch):
    """Another load treats the trees of a load whose lease is free as a dead load's and deletes them: removing
    them after the lease is released raced that deletion (found by CI: two loads of one table at once)."""
    lake = Lake((tmp_path / "lake").as_uri())
    seen: list[bool] = []
    finish = engine.Workspace.finish

    def watched(ws: engine.Workspace) -> None:
        seen.append(engine._lease_held(ws.root, ws.load_id))
        finish(ws)

    monkeypatch.setattr(engine.Workspace, "finish", watched)
    engine.run_full_load(
        table_mappings([catalog()["Segmento"]]),
        source_url=f"duckdb:///{small_source}",
        lake=lake,
        settings=load_settings(),
    )
    assert seen == [True]
    assert _trees(tmp_path / "lake" / "_dms") == []
