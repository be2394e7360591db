"""From the raw figures of each run to the published result: medians with min and max, ratios measured in
the same run, the issue's targets, a JSON file to compare runs over time and a Markdown table."""

from __future__ import annotations

import json
import operator
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from consorcio_assets.tooling.bench import latency, row_diff

GIB_MB = 1024.0


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else 0.0


def derive(run: Mapping) -> dict[str, float]:
    """One run's figures, flat (`stage.figure`): rows/s, MB/s, peaks and ours ÷ theirs in rows/s."""
    ex, exf = run["extract"], run["extract_floor"]
    tr, trf = run["transform"], run["transform_floor"]
    ld, fl = run["aurora_load"], run["load_floors"]
    e2e = run["end_to_end"]
    out = {
        "extract.rows_per_s": ex["rows_per_s"],
        "extract.mb_per_s": ex["mb_per_s"],
        "extract.peak_rss_mb": ex["peak_rss_mb"],
        "extract.floor_rows_per_s": exf["rows_per_s"],
        "extract.floor_mb_per_s": exf["mb_per_s"],
        "extract.vs_floor": _ratio(ex["rows_per_s"], exf["rows_per_s"]),
        "transform.rows_per_s": tr["rows_per_s"],
        "transform.peak_rss_mb": tr["peak_rss_mb"],
        "transform.floor_rows_per_s": trf["rows_per_s"],
        "transform.vs_floor": _ratio(tr["rows_per_s"], trf["rows_per_s"]),
        "aurora_load.rows_per_s": ld["rows_per_s"],
        "aurora_load.peak_rss_mb": ld["peak_rss_mb"],
        "checks.seconds": e2e["check_seconds"],
        "checks.pct_of_load": 100.0 * _ratio(e2e["check_seconds"], e2e["load_step_seconds"]),
        "end_to_end.seconds": e2e["seconds"],
        "end_to_end.rows_per_s": _ratio(e2e["rows"], e2e["seconds"]),
        "end_to_end.peak_rss_mb": e2e["peak_rss_mb"],
    }
    if "cpu_seconds" in e2e:  # runs recorded before the CPU figures existed have none
        for name in ("cpu_seconds", "cpu_seconds_processes", "cpu_seconds_postgres", "cpu_floor_seconds", "cpu_busy"):
            out[f"end_to_end.{name}"] = e2e[name]
    for name in ("copy_floor", "adbc", "to_sql", "to_sql_multi", "awswrangler"):
        theirs = fl[name]["rows_per_s"]
        out[f"aurora_load.{name}_rows_per_s"] = theirs
        out[f"aurora_load.vs_{name}"] = _ratio(ld["rows_per_s"], theirs)
    verify = run.get("verify_migration")
    if verify:
        out["checks.verify_migration_seconds"] = verify["seconds"]
        out["checks.verify_migration_peak_rss_mb"] = verify["peak_rss_mb"]
    spark = run.get("aurora_load_spark")
    if spark:
        out["aurora_load.spark_rows_per_s"] = spark["rows_per_s"]
        out["aurora_load.spark_peak_rss_mb"] = spark["peak_rss_mb"]
        out["aurora_load.spark_vs_in_process"] = _ratio(spark["rows_per_s"], ld["rows_per_s"])
    single = run.get("aurora_load_single_stream")
    if single:
        out["aurora_load.single_stream_rows_per_s"] = single["rows_per_s"]
        out["aurora_load.single_stream_vs_copy_floor"] = _ratio(single["rows_per_s"], fl["copy_floor"]["rows_per_s"])
    out.update(latency.figures(run))
    out.update(row_diff.derive(run))
    out["peak_rss_mb.max"] = max(
        out["extract.peak_rss_mb"],
        out["transform.peak_rss_mb"],
        out["aurora_load.peak_rss_mb"],
        out["end_to_end.peak_rss_mb"],
        out.get("checks.verify_migration_peak_rss_mb", 0.0),
    )
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _set(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[leaf] = value


def _get(tree: Mapping, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


@dataclass(frozen=True)
class Target:
    label: str
    key: str
    op: str
    threshold: float
    #: the figure is only judged at this scale or above (the end-to-end time is promised at 1M simulations)
    min_simulacoes: int = 0

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return {"<": operator.lt, "<=": operator.le, ">=": operator.ge}[self.op](value, self.threshold)


TARGETS = (
    Target("extract ≥ 0.5× DuckDB COPY TO parquet", "stages.extract.vs_floor", ">=", 0.5),
    Target("transform ≥ 0.5× pyarrow read + write", "stages.transform.vs_floor", ">=", 0.5),
    Target("Aurora load, one stream ≥ 0.9× COPY floor", "stages.aurora_load.single_stream_vs_copy_floor", ">=", 0.9),
    Target("Aurora load, parallel streams ≥ 1.2× COPY floor", "stages.aurora_load.vs_copy_floor", ">=", 1.2),
    Target("Aurora load ≥ 10× to_sql()", "stages.aurora_load.vs_to_sql", ">=", 10.0),
    # awswrangler (its anchor runs 14× faster here) and "checks % of load" (a load verification has nothing
    # to do with) are information now; verification is measured against reladiff on the same data (issue 18)
    Target(
        "row-level diff ≥ 2× faster than reladiff",
        "stages.row_diff.speedup_vs_reladiff",
        ">=",
        2.0,
        min_simulacoes=1_000_000,
    ),
    Target(
        "verify_migration no slower than reladiff's row-level diff",
        "stages.verify.vs_reladiff",
        ">=",
        1.0,
        min_simulacoes=1_000_000,
    ),
    Target("peak RSS of any process < 1 GiB", "peak_rss_mb.max", "<", GIB_MB),
    Target("end to end < 10 min at 1M simulações", "end_to_end.seconds", "<", 600.0, min_simulacoes=1_000_000),
    Target("end to end ≤ 60 s at 1M simulações", "end_to_end.seconds", "<=", 60.0, min_simulacoes=1_000_000),
    *(Target(*t) for t in latency.TARGETS),
)


def build(runs: Sequence[Mapping], scale: Mapping, meta: Mapping, baseline: Mapping | None = None) -> dict:
    """The result document: every figure's median at its key, min and max under `spread`."""
    derived = [derive(r) for r in runs]
    result: dict = {**meta, "scale": dict(scale), "runs": len(runs)}
    for key in derived[0]:
        values = [d[key] for d in derived if key in d]
        s = spread(values)
        section = "" if key.startswith(("peak_rss_mb", "latency.")) else "stages."
        path = f"{section}{key}".replace("stages.end_to_end.", "end_to_end.")
        _set(result, path, s["median"])
        parent, leaf = path.rsplit(".", 1)
        _set(result, f"{parent}.spread.{leaf}", [s["min"], s["max"]])
    _set(result, "stages.aurora_load.sample_rows", runs[0]["load_floors"]["sample_rows"])
    result["end_to_end"]["processes"] = _process_peaks(runs)
    last = runs[-1]["end_to_end"]
    result["end_to_end"].update(
        steps=last.get("steps", {}), stages=last.get("stages", {}), check_steps=last.get("check_steps", [])
    )
    result["stages"]["checks"]["slowest"] = _slowest_checks(runs)
    result["end_to_end"]["status"] = [r["end_to_end"].get("status") for r in runs]
    result["raw_runs"] = list(runs)
    if baseline:
        _flatness(result, baseline)
    result["targets"] = judge(result)
    return result


def _slowest_checks(runs: Sequence[Mapping], limit: int = 10) -> dict[str, float]:
    """The checks that cost most in the end-to-end runs (median seconds over the runs that timed them)."""
    timed: dict[str, list[float]] = {}
    for run in runs:
        for name, seconds in run["end_to_end"].get("slowest_checks", {}).items():
            timed.setdefault(name, []).append(seconds)
    medians = {name: round(statistics.median(v), 2) for name, v in timed.items()}
    return dict(sorted(medians.items(), key=lambda kv: -kv[1])[:limit])


def _process_peaks(runs: Sequence[Mapping]) -> dict[str, float]:
    """The highest peak of each kind of process in the end-to-end runs (label → MB)."""
    peaks: dict[str, float] = {}
    for run in runs:
        for p in run["end_to_end"].get("processes", []):
            peaks[p["label"]] = max(peaks.get(p["label"], 0.0), p["peak_rss_mb"])
    return dict(sorted(peaks.items(), key=lambda kv: -kv[1]))


def _flatness(result: dict, baseline: Mapping) -> None:
    """Memory against a run at another scale: the issue wants it unchanged (±20%) at 4× the data."""
    base = _get(baseline, "peak_rss_mb.max")
    growth = _ratio(result["peak_rss_mb"]["max"], base) if base else None
    by_stage = {}
    for key in (
        "stages.extract.peak_rss_mb",
        "stages.transform.peak_rss_mb",
        "stages.aurora_load.peak_rss_mb",
        "end_to_end.peak_rss_mb",
    ):
        here, there = _get(result, key), _get(baseline, key)
        if here and there:
            by_stage[key.split(".")[-2]] = round(here / there, 3)
    result["peak_rss_mb"]["baseline"] = {
        "simulacoes": _get(baseline, "scale.simulacoes"),
        "max": base,
        "growth": growth,
        "growth_by_stage": by_stage,
    }


def judge(result: Mapping) -> list[dict]:
    out = []
    simulacoes = result["scale"]["simulacoes"]
    targets = list(TARGETS)
    if _get(result, "peak_rss_mb.baseline.growth") is not None:
        targets.append(
            Target(
                "peak RSS unchanged (≤ 1.2×) against the baseline scale", "peak_rss_mb.baseline.growth", "<", 1.2 + 1e-9
            )
        )
    for t in targets:
        value = _get(result, t.key)
        judged = simulacoes >= t.min_simulacoes
        out.append(
            {
                "target": t.label,
                "key": t.key,
                "value": value,
                "threshold": t.threshold,
                "op": t.op,
                "met": t.met(value) if judged else None,
            }
        )
    return out


def write_json(result: Mapping, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    return path


# ---------------------------------------------------------------------------------------------- Markdown


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}"


def _fig(result: Mapping, key: str, unit: str = "") -> str:
    """`median [min–max]` of a figure."""
    value = _get(result, key)
    parent, leaf = key.rsplit(".", 1)
    rng = _get(result, f"{parent}.spread.{leaf}")
    if value is None:
        return "—"
    if rng and len({round(x, 6) for x in rng}) > 1 and result.get("runs", 1) > 1:
        return f"{_num(value, unit)} [{_num(rng[0])}–{_num(rng[1])}]"
    return _num(value, unit)


def markdown(result: Mapping) -> str:
    s = "stages."
    rows = [
        (
            "extract (DMS engine)",
            f"{_fig(result, s + 'extract.rows_per_s')} rows/s, "
            f"{_fig(result, s + 'extract.mb_per_s')} MB/s, {_fig(result, s + 'extract.peak_rss_mb', ' MB')}",
            "DuckDB COPY TO parquet",
            f"{_fig(result, s + 'extract.floor_rows_per_s')} rows/s",
            _fig(result, s + "extract.vs_floor", "×"),
        ),
        (
            "transform (Glue job)",
            f"{_fig(result, s + 'transform.rows_per_s')} rows/s, {_fig(result, s + 'transform.peak_rss_mb', ' MB')}",
            "pyarrow read + write",
            f"{_fig(result, s + 'transform.floor_rows_per_s')} rows/s",
            _fig(result, s + "transform.vs_floor", "×"),
        ),
    ]
    load = f"{_fig(result, s + 'aurora_load.rows_per_s')} rows/s, {_fig(result, s + 'aurora_load.peak_rss_mb', ' MB')}"
    single = _get(result, s + "aurora_load.single_stream_rows_per_s")
    sample = _get(result, s + "aurora_load.sample_rows")
    for i, (name, label) in enumerate(
        (
            ("copy_floor", "server-side COPY FROM csv (floor)"),
            ("adbc", "ADBC adbc_ingest"),
            ("to_sql", f"pandas to_sql() ({sample:,} rows)"),
            ("to_sql_multi", f"pandas to_sql(method=multi) ({sample:,} rows)"),
            ("awswrangler", f"awswrangler to_sql ({sample:,} rows)"),
        )
    ):
        rows.append(
            (
                "Aurora load (transform included)" if i == 0 else "",
                load if i == 0 else "",
                label,
                f"{_fig(result, f'{s}aurora_load.{name}_rows_per_s')} rows/s",
                _fig(result, f"{s}aurora_load.vs_{name}", "×"),
            )
        )
    if single is not None:
        rows.append(
            (
                "Aurora load, one COPY stream",
                f"{_fig(result, s + 'aurora_load.single_stream_rows_per_s')} rows/s",
                "server-side COPY FROM csv (floor)",
                f"{_fig(result, s + 'aurora_load.copy_floor_rows_per_s')} rows/s",
                _fig(result, s + "aurora_load.single_stream_vs_copy_floor", "×"),
            )
        )
    if _get(result, s + "aurora_load.spark_rows_per_s") is not None:
        rows.append(
            (
                "Aurora load on Spark, local[2] (transform included)",
                f"{_fig(result, s + 'aurora_load.spark_rows_per_s')} rows/s, "
                f"{_fig(result, s + 'aurora_load.spark_peak_rss_mb', ' MB')} (driver)",
                "the in-process path (row above)",
                f"{_fig(result, s + 'aurora_load.rows_per_s')} rows/s",
                _fig(result, s + "aurora_load.spark_vs_in_process", "×"),
            )
        )
    rows.append(
        (
            "reconciliation (all checks)",
            f"{_fig(result, s + 'checks.seconds', ' s')}, {_fig(result, s + 'checks.pct_of_load', '%')} of the load",
            "—",
            "—",
            "—",
        )
    )
    if _get(result, s + "row_diff.seconds") is not None:
        rows.append(
            (
                "row-level diff, every table (`rows_match_source`)",
                _fig(result, s + "row_diff.seconds", " s"),
                "reladiff hashdiff (same tables, keys, columns)",
                _fig(result, s + "row_diff.reladiff_seconds", " s"),
                _fig(result, s + "row_diff.speedup_vs_reladiff", "×"),
            )
        )
    if _get(result, s + "verify.seconds") is not None:
        theirs = _fig(result, s + "row_diff.reladiff_seconds", " s") if _get(result, s + "row_diff") else "—"
        rows.append(
            (
                f"checks alone (`verify_migration`, {_num(_get(result, s + 'verify.checks'))} checks)",
                _fig(result, s + "verify.seconds", " s"),
                "reladiff's row-level diff alone",
                theirs,
                _fig(result, s + "verify.vs_reladiff", "×"),
            )
        )
    rows.append(
        (
            "end to end (`migrate_all`)",
            f"{_fig(result, 'end_to_end.seconds', ' s')}, "
            f"{_fig(result, 'end_to_end.rows_per_s')} rows/s, {_fig(result, 'end_to_end.peak_rss_mb', ' MB')}",
            "—",
            "—",
            "—",
        )
    )
    if _get(result, "end_to_end.cpu_seconds") is not None:
        rows.append(
            (
                "end to end: CPU (run's processes + PostgreSQL) and the floor it sets on these cores",
                f"{_fig(result, 'end_to_end.cpu_seconds', ' s')} "
                f"({_fig(result, 'end_to_end.cpu_seconds_processes', ' s')} + "
                f"{_fig(result, 'end_to_end.cpu_seconds_postgres', ' s')}), "
                f"floor {_fig(result, 'end_to_end.cpu_floor_seconds', ' s')}, busy {_fig(result, 'end_to_end.cpu_busy')}",
                "CPU ÷ cores: no schedule finishes sooner",
                "—",
                "—",
            )
        )
    if _get(result, "latency") is not None:
        names = ("single_table_reload", "make_run_warm", "verify_default")
        rows.append(
            (
                "latency at 20,000 simulações: one-table reload, `make run` warm, `consorcio verify`",
                ", ".join(_fig(result, f"latency.{name}.seconds", " s") for name in names),
                "the issue's targets",
                "5 s, 20 s, 5 s",
                "—",
            )
        )
        if _get(result, "latency.verify_default.cold_seconds") is not None:
            rows.append(
                (
                    "the same commands cold (CONSORCIO_WARM=0: no warm server)",
                    ", ".join(_fig(result, f"latency.{name}.cold_seconds", " s") for name in names),
                    "—",
                    "—",
                    "—",
                )
            )
    scale = result["scale"]
    lines = [
        f"### {scale['simulacoes']:,} simulações, {scale['rows_total']:,} rows — median of {result['runs']} run(s) "
        f"[min–max]",
        "",
        "| stage | ours | compared with | theirs | ours ÷ theirs |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        met = {True: "yes", False: "**no**"}.get(
            t["met"], "not measured" if t["value"] is None else "not judged at this scale"
        )
        value = f"{t['value']:.3f}" if t["value"] is not None and abs(t["value"]) < 10 else _num(t["value"])
        lines.append(f"| {t['target']} | {value} | {met} |")
    slowest = result["stages"]["checks"].get("slowest") or {}
    if slowest:
        lines += ["", "slowest checks (s): " + ", ".join(f"{k} {_num(v)}" for k, v in list(slowest.items())[:5])]
    planted = row_diff.planted_line(result)
    if planted:
        lines += ["", planted]
    statuses = result["end_to_end"]["status"]
    failed = sorted({c for r in result["raw_runs"] for c in r["end_to_end"].get("failed_checks", [])})
    lines += [
        "",
        f"`migrate_all` runs: {', '.join(statuses)}"
        + (f"; checks that did not pass: {', '.join(failed)}" if failed else ""),
    ]
    base = result["peak_rss_mb"].get("baseline")
    if base and base.get("growth") is not None:
        lines += [
            "",
            f"memory against {base['simulacoes']:,} simulações: peak {_num(base['max'], ' MB')} there, "
            f"growth {_num(base['growth'], '×')}; by stage "
            + ", ".join(f"{k} {_num(v, '×')}" for k, v in base["growth_by_stage"].items()),
        ]
    lines += [
        "",
        f"peak RSS of any process: {_num(result['peak_rss_mb']['max'], ' MB')}; by process (end to end): "
        + ", ".join(f"{k} {_num(v, ' MB')}" for k, v in list(result["end_to_end"]["processes"].items())[:6]),
    ]
    return "\n".join(lines)
