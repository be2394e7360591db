"""The quick benchmark end to end on a tiny source: every figure the issue asks for is in the JSON and positive."""

from __future__ import annotations

import json

from consorcio_assets.tooling.bench.command import main
from consorcio_assets.tooling.bench.results import TARGETS

REQUIRED = (
    "scale.simulacoes",
    "scale.rows_total",
    "stages.extract.rows_per_s",
    "stages.extract.vs_floor",
    "stages.transform.rows_per_s",
    "stages.transform.vs_floor",
    "stages.aurora_load.rows_per_s",
    "stages.aurora_load.vs_copy_floor",
    "stages.aurora_load.vs_to_sql",
    "stages.aurora_load.vs_to_sql_multi",
    "stages.aurora_load.vs_awswrangler",
    "stages.checks.seconds",
    "stages.checks.pct_of_load",
    "end_to_end.seconds",
    "end_to_end.cpu_seconds",
    "end_to_end.cpu_seconds_postgres",
    "end_to_end.cpu_floor_seconds",
    "peak_rss_mb.max",
    "latency.single_table_reload.seconds",
    "latency.make_run_warm.seconds",
    "latency.verify_default.seconds",
    "latency.single_table_reload.cold_seconds",
    "latency.make_run_warm.cold_seconds",
    "latency.verify_default.cold_seconds",
    "stages.row_diff.seconds",
    "stages.row_diff.reladiff_seconds",
    "stages.row_diff.speedup_vs_reladiff",
    "stages.verify.seconds",
    "stages.verify.vs_reladiff",
)


def _get(tree, dotted):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def test_quick_bench_reports_every_figure(tmp_path, fresh_db, storage_db, monkeypatch, capsys):
    monkeypatch.setenv("CONSORCIO_BENCH_TARGET_URL", fresh_db)
    monkeypatch.setenv("CONSORCIO_BENCH_DAGSTER_URL", storage_db)
    out = tmp_path / "result.json"
    code = main(
        ["--simulacoes", "20000", "--quick", "--runs", "1", "--home", str(tmp_path / "bench"), "--output", str(out)]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in REQUIRED:
        value = _get(result, key)
        assert isinstance(value, (int, float)) and value > 0, f"{key} = {value!r}"
    assert result["scale"]["simulacoes"] == 20000
    assert result["scale"]["rows_total"] == sum(result["scale"]["tables"].values())
    assert result["end_to_end"]["status"] == ["SUCCESS"]
    assert result["stages"]["aurora_load"]["sample_rows"] > 0
    labels = result["end_to_end"]["processes"]
    assert any("consorcio_glue" in label for label in labels), labels
    assert {t["key"] for t in result["targets"]} >= {t.key for t in TARGETS if "single_stream" not in t.key}
    table = capsys.readouterr().out
    assert "| extract (DMS engine) |" in table and "pandas to_sql()" in table
    chart = out.with_suffix(".svg").read_text()  # the chart next to the JSON
    assert chart.startswith("<svg") and "ours: Aurora load" in chart and "pandas to_sql()" in chart
    # both tools found exactly the three planted differences (the run fails otherwise), keys not values
    diff = result["raw_runs"][0]["row_diff"]
    assert diff["ours"]["found"] == diff["reladiff"]["found"] == diff["planted"]
    assert {kind for kinds in diff["planted"].values() for kind in kinds} == {"changed", "missing"}
    assert sum(len(keys) for kinds in diff["planted"].values() for keys in kinds.values()) == 3
    assert set(diff["reladiff"]["tables"]) == set(diff["ours"]["tables"]) and len(diff["ours"]["tables"]) == 12
    assert result["stages"]["verify"]["checks"] > 100
    assert "| row-level diff, every table (`rows_match_source`) |" in table and "found exactly by ours" in table
    assert result["stages"]["aurora_load"]["spark_rows_per_s"] > 0  # the dev extra brings pyspark; Java is there
    assert "| Aurora load on Spark, local[2] (transform included) |" in table


def _stage(rows, seconds, peak=100.0, size=0):
    return {
        "rows": rows,
        "seconds": seconds,
        "bytes": size,
        "rows_per_s": rows / seconds,
        "mb_per_s": size / 2**20 / seconds,
        "peak_rss_mb": peak,
    }


def _run(load_seconds: float) -> dict:
    floors = {
        name: _stage(n, s)
        for name, n, s in (
            ("copy_floor", 1000, 1.0),
            ("adbc", 1000, 1.0),
            ("to_sql", 100, 1.0),
            ("to_sql_multi", 100, 10.0),
            ("awswrangler", 100, 2.0),
        )
    }
    return {
        "extract": _stage(1000, 2.0, 300.0, 2**20),
        "extract_floor": _stage(1000, 1.0),
        "transform": _stage(1000, 1.0, 400.0),
        "transform_floor": _stage(1000, 4.0),
        "aurora_load": _stage(1000, load_seconds, 500.0),
        "load_floors": {**floors, "sample_rows": 100},
        "end_to_end": {
            "seconds": 10.0,
            "rows": 900,
            "peak_rss_mb": 700.0,
            "check_seconds": 1.0,
            "load_step_seconds": 5.0,
            "status": "SUCCESS",
            "processes": [{"pid": 1, "label": "python consorcio_glue_job.py", "peak_rss_mb": 700.0}],
        },
    }


def test_report_takes_medians_and_same_run_ratios():
    from consorcio_assets.tooling.bench import results as report

    result = report.build(
        [_run(1.0), _run(2.0), _run(4.0)],
        {"simulacoes": 10, "rows_total": 900, "tables": {}},
        {},
        baseline={"scale": {"simulacoes": 2}, "peak_rss_mb": {"max": 500.0}},
    )
    load = result["stages"]["aurora_load"]
    assert load["rows_per_s"] == 500.0 and load["spread"]["rows_per_s"] == [250.0, 1000.0]
    assert load["vs_copy_floor"] == 0.5 and load["vs_to_sql"] == 5.0 and load["vs_awswrangler"] == 10.0
    assert result["stages"]["extract"]["vs_floor"] == 0.5 and result["stages"]["transform"]["vs_floor"] == 4.0
    assert result["stages"]["checks"]["pct_of_load"] == 20.0
    assert result["peak_rss_mb"]["max"] == 700.0 and result["peak_rss_mb"]["baseline"]["growth"] == 1.4
    met = {t["key"]: t["met"] for t in result["targets"]}
    assert met["stages.transform.vs_floor"] is True and met["stages.extract.vs_floor"] is True
    assert met["stages.aurora_load.vs_copy_floor"] is False and met["peak_rss_mb.baseline.growth"] is False
    assert met["end_to_end.seconds"] is None  # promised at 1M simulações only
    assert "| extract (DMS engine) | 500 rows/s" in report.markdown(result)


def test_latency_figures_are_medians_of_the_runs_judged_against_the_issue_targets():
    from consorcio_assets.tooling.bench import results as report

    def timed(reload, make_run, verify):
        return {
            "single_table_reload": {"seconds": reload},
            "make_run_warm": {"seconds": make_run},
            "verify_default": {"seconds": verify},
        }

    runs = [
        {**_run(1.0), "latency": timed(r, m, v)} for r, m, v in ((4.0, 30.0, 6.0), (6.0, 18.0, 2.0), (5.0, 19.0, 9.0))
    ]
    result = report.build(runs, {"simulacoes": 1_000_000, "rows_total": 900, "tables": {}}, {})
    latency = result["latency"]
    assert latency["single_table_reload"] == {"seconds": 5.0, "spread": {"seconds": [4.0, 6.0]}}
    assert latency["make_run_warm"]["seconds"] == 19.0 and latency["verify_default"]["seconds"] == 6.0
    met = {t["key"]: t["met"] for t in result["targets"]}
    assert met["latency.single_table_reload.seconds"] is True  # ≤ 5 s: the bound itself meets it
    assert met["latency.make_run_warm.seconds"] is True and met["latency.verify_default.seconds"] is False
    assert (
        "| latency at 20,000 simulações: one-table reload, `make run` warm, `consorcio verify` | 5.00 s [4.00–6.00], "
        "19.0 s [18.0–30.0], 6.00 s [2.00–9.00] |" in report.markdown(result)
    )


def test_latency_runs_at_the_default_scale_whatever_the_bench_scale(tmp_path):
    from consorcio_assets.tooling.bench.latency import DEFAULT_SIMULACOES, latency_config
    from consorcio_assets.tooling.bench.runner import BenchConfig

    same = BenchConfig(simulacoes=DEFAULT_SIMULACOES, home=tmp_path / "b")
    assert latency_config(same) is same
    big = latency_config(BenchConfig(simulacoes=1_000_000, home=tmp_path / "b"))
    assert big.simulacoes == DEFAULT_SIMULACOES and big.bench_home == (tmp_path / f"latency-{DEFAULT_SIMULACOES}")


def test_chart_puts_each_stage_beside_its_anchors_on_a_log_scale(tmp_path):
    import xml.etree.ElementTree as ET

    from consorcio_assets.tooling.bench import chart
    from consorcio_assets.tooling.bench import results as report

    result = report.build([_run(1.0)], {"simulacoes": 10, "rows_total": 900, "tables": {}}, {})
    bars = chart.bars(result)
    assert [(label, value) for _, label, value, _ in bars[:4]] == [
        ("ours: extract (DMS engine)", 500.0),
        ("DuckDB COPY TO parquet", 1000.0),
        ("ours: transform (Glue job)", 1000.0),
        ("pyarrow read + write", 250.0),
    ]
    assert {stage for stage, *_ in bars} == {stage for stage, *_ in chart.ROWS}
    assert sum(ours for *_, ours in bars) == len(chart.ROWS)  # one bar of ours per stage
    path = chart.write_chart(result, tmp_path / "2026-01-01.json")
    assert path == tmp_path / "2026-01-01.svg"
    svg = ET.fromstring(path.read_text())
    rects = [r for r in svg.iter("{http://www.w3.org/2000/svg}rect") if r.get("y")]
    widths = [float(r.get("width")) for r in rects]
    assert len(rects) == len(bars) and max(widths) == chart.WIDTH  # the largest figure spans the axis
    # log scale: 10× the rows/s is a constant step, so to_sql (100/s) is half the bar of 10,000/s and not 1%
    assert chart._x(100, 10_000) == chart.WIDTH / 2
    assert "1,000 rows/s" in path.read_text()


def test_the_spark_row_sits_beside_the_in_process_load_on_the_same_runs():
    from consorcio_assets.tooling.bench import results as report

    runs = [{**_run(s), "aurora_load_spark": _stage(1000, 4 * s, 300.0)} for s in (1.0, 2.0, 4.0)]
    result = report.build(runs, {"simulacoes": 10, "rows_total": 900, "tables": {}}, {})
    load = result["stages"]["aurora_load"]
    assert load["spark_rows_per_s"] == 125.0 and load["spark_vs_in_process"] == 0.25
    assert (
        "| Aurora load on Spark, local[2] (transform included) | 125 [62.5–250] rows/s, 300 MB (driver) | the "
        "in-process path (row above) | 500 [250–1,000] rows/s | 0.25× |"
    ) in report.markdown(result)
    assert (
        "spark_rows_per_s"
        not in report.build([_run(1.0)], {"simulacoes": 10, "rows_total": 900, "tables": {}}, {})["stages"][
            "aurora_load"
        ]
    )


def test_profile_ranks_functions_by_self_and_inclusive_samples():
    from consorcio_assets.tooling.bench.profile import top_frames

    raw = (
        "main (job.py:10);load (job.py:20);copy (psycopg/cursor.py:5) 6\n"
        "main (job.py:10);load (job.py:22);transform (job.py:40) 3\n"
        "main (job.py:11) 1\n"
    )
    total, own, inclusive = top_frames(raw, limit=3)
    assert total == 10
    assert own == [("copy (cursor.py)", 6), ("transform (job.py)", 3), ("main (job.py)", 1)]
    assert inclusive[0] == ("main (job.py)", 10) and inclusive[1] == ("load (job.py)", 9)


def test_a_measured_run_counts_its_own_cpu_and_the_database_servers(fresh_db):
    """The end-to-end's CPU figures: a child's busy loop is the tree's, a query it sends is the server's."""
    import sys

    from consorcio_assets.tooling.bench.peak_rss import run_measured
    from consorcio_assets.tooling.bench.runner import cpu_figures, local_server_dir

    server = local_server_dir({"CONSORCIO_TARGET_URL": fresh_db})
    assert server is not None and (server / "PG_VERSION").exists()
    busy_python = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    busy_server = (
        "import psycopg, sys\n"
        "with psycopg.connect(sys.argv[1]) as c:\n"
        "    c.execute('SET max_parallel_workers_per_gather = 0')\n"
        "    c.execute('SELECT count(DISTINCT md5(i::text)) FROM generate_series(1, 1000000) i')\n"
    )
    own = run_measured([sys.executable, "-c", busy_python], server=server)
    queried = run_measured([sys.executable, "-c", busy_server, fresh_db], server=server)
    assert own.returncode == queried.returncode == 0, queried.stderr
    assert own.cpu_seconds >= 0.55
    assert queried.server_cpu_seconds >= 0.5 and queried.server_cpu_seconds > queried.cpu_seconds
    figures = cpu_figures(queried)
    total = queried.cpu_seconds + queried.server_cpu_seconds
    assert figures["cpu_seconds"] == round(total, 1)
    assert figures["cpu_floor_seconds"] == round(total / figures["cores"], 1)
    assert local_server_dir({"CONSORCIO_TARGET_URL": "postgresql://u@db.example.com/consorcio"}) is None


def test_the_bench_runs_its_commands_cold_and_leaves_no_warm_server(tmp_path, monkeypatch):
    from consorcio_assets.tooling import warm
    from consorcio_assets.tooling.bench.runner import BenchConfig, bench_env

    monkeypatch.setenv(warm.SWITCH_ENV, "1")
    assert bench_env(BenchConfig(simulacoes=100, home=tmp_path))[warm.SWITCH_ENV] == "0"
