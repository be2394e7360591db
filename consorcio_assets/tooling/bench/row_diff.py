"""Our row-level diff beside reladiff's, on the same source and target, with planted differences.

`measure(env)` plants three differences in the loaded target (`planted`), runs our diff (the
`rows_match_source` check's hashdiff, every migrated table one after the other, with the check's own
connections) and reladiff's (`reladiff_compare`) each in its own process, restores the target, and fails
unless both found exactly the planted keys. `python -m consorcio_assets.tooling.bench.row_diff ours|reladiff` is one
side: it prints one JSON line of seconds and keys (keys only, never values).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from datetime import UTC

from consorcio_assets.catalog import Table, catalog
from consorcio_assets.tooling.bench import planted

TOOLS = ("ours", "reladiff")


class PlantedNotFound(RuntimeError):
    pass


def migrated_tables() -> list[Table]:
    return list(catalog().load_order())


def ours(tables: list[Table]) -> dict:
    """The `rows_match_source` hashdiff of every table, with the sides the check step opens. Alone, as reladiff
    runs: under the target server's own parallel-query setting (reladiff's sessions get it too), not the run's
    `CONSORCIO_CHECK_PARALLEL_WORKERS`, which is for checks sent several at once."""
    from consorcio_assets.checks import hashdiff
    from consorcio_assets.defs.checks import Connections
    from consorcio_assets.defs.resources import initialized
    from consorcio_assets.target.resource import TargetDb

    dbs = initialized("source_db", "target_db")
    conns = Connections(dbs["source_db"], TargetDb(url=dbs["target_db"].url), catalog())
    source, target = conns.source, conns.target
    by_value = "mssql" in (source.dialect, target.dialect)  # as `hashdiff.reconcile` decides
    per_table: dict[str, dict] = {}
    try:
        for table in tables:
            started = time.perf_counter()
            result = hashdiff.diff(
                hashdiff.projection(source, table, by_value=by_value),
                hashdiff.projection(target, table, by_value=by_value),
            )
            per_table[table.target_name] = {
                "seconds": time.perf_counter() - started,
                "exhaustive": result.exhaustive,
                **{
                    kind: sorted(list(key[1]) for key in getattr(result, kind))
                    for kind in ("missing", "extra", "changed")
                },
            }
    finally:
        conns.close()
    return {"seconds": sum(r["seconds"] for r in per_table.values()), "tables": per_table}


def reladiff(tables: list[Table]) -> dict:
    from consorcio_assets.settings import get_settings
    from consorcio_assets.target.postgres import target_url
    from consorcio_assets.tooling.bench import reladiff_compare

    settings = get_settings()
    return reladiff_compare.run(settings.source_url, str(settings.source_path), target_url(), tables)


def found(result: Mapping) -> dict[str, dict[str, list[list[str]]]]:
    """{table: {kind: keys}} of every table where a tool reported a difference."""
    out = {}
    for table, figures in result["tables"].items():
        kinds = {
            k: sorted(list(map(str, key)) for key in figures[k]) for k in ("missing", "extra", "changed") if figures[k]
        }
        if kinds:
            out[table] = kinds
    return out


def verify_found(tool: str, result: Mapping, expected: Mapping) -> None:
    """Exactly the planted keys, in the planted tables, of the planted kinds: else one error naming them."""
    got = found(result)
    if got != expected:
        problems = []
        for table in sorted(set(got) | set(expected)):
            for kind in sorted(set(got.get(table, {})) | set(expected.get(table, {}))):
                have, want = got.get(table, {}).get(kind, []), expected.get(table, {}).get(kind, [])
                if have != want:
                    problems.append(f"{table} {kind}: found {have[:5]}{' …' if len(have) > 5 else ''}, planted {want}")
        raise PlantedNotFound(f"{tool} did not find exactly the planted differences: " + "; ".join(problems))


def measure(env: Mapping[str, str]) -> dict:
    """Plant, run both tools (each in its own process), restore; both must find exactly the planted keys."""
    from consorcio_assets.glue_runner.resource import TARGET_URL_ENV
    from consorcio_assets.tooling.bench.peak_rss import run_measured
    from consorcio_assets.tooling.bench.runner import BenchError, _check, _last_json

    url = env[TARGET_URL_ENV]
    plants = planted.plant(url)
    expected = planted.expected(plants)
    results = {}
    try:
        for tool in TOOLS:
            measured = _check(run_measured([sys.executable, "-m", __name__, tool], env=dict(env)), f"row diff ({tool})")
            results[tool] = {
                **_last_json(measured.stdout),
                "peak_rss_mb": measured.peak_rss_mb,
                "wall_seconds": measured.wall_seconds,
            }
    finally:
        planted.restore(url)
    try:
        for tool in TOOLS:
            verify_found(tool, results[tool], expected)
    except PlantedNotFound as err:
        raise BenchError(str(err)) from err
    return {"planted": expected, **{tool: {**results[tool], "found": found(results[tool])} for tool in TOOLS}}


def main(argv: list[str] | None = None) -> int:
    import logging

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in TOOLS:
        print(f"usage: python -m {__name__} {{{'|'.join(TOOLS)}}}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    tables = migrated_tables()
    result = ours(tables) if args[0] == "ours" else reladiff(tables)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def derive(run: Mapping) -> dict[str, float]:
    """One run's row-diff and verify figures, flat (`stage.figure`), ratios from this same run."""
    out: dict[str, float] = {}
    diff, verify = run.get("row_diff"), run.get("verify_migration")
    if diff:
        ours_s, theirs_s = diff["ours"]["seconds"], diff["reladiff"]["seconds"]
        out.update(
            {
                "row_diff.seconds": ours_s,
                "row_diff.reladiff_seconds": theirs_s,
                "row_diff.speedup_vs_reladiff": _ratio(theirs_s, ours_s),
                "row_diff.peak_rss_mb": diff["ours"]["peak_rss_mb"],
                "row_diff.reladiff_peak_rss_mb": diff["reladiff"]["peak_rss_mb"],
            }
        )
    if verify:
        out.update(
            {
                "verify.seconds": verify["seconds"],
                "verify.wall_seconds": verify["wall_seconds"],
                "verify.checks": verify["total"],
            }
        )
        if diff:
            out["verify.vs_reladiff"] = _ratio(diff["reladiff"]["seconds"], verify["seconds"])
    return out


def planted_line(result: Mapping) -> str | None:
    """One Markdown line: the planted keys and that both tools found exactly them (a run that did not fails)."""
    runs = [r["row_diff"] for r in result.get("raw_runs", []) if r.get("row_diff")]
    if not runs:
        return None
    planted = "; ".join(
        f"{table} {kind} {', '.join('(' + ', '.join(k) + ')' for k in keys)}"
        for table, kinds in runs[-1]["planted"].items()
        for kind, keys in kinds.items()
    )
    return (
        f"planted differences (one centavo, one missing row, one timestamp +1 ms), found exactly by ours and by "
        f"reladiff in {len(runs)} of {len(runs)} run(s); last run: {planted}"
    )


# ---------------------------------------------------------------------------------------------- --verify-only


def run_verify_only(config, progress=print, after_run=None, reuse_load: bool = False) -> tuple[list[dict], dict, dict]:
    """`consorcio bench --verify-only`: one `migrate_all` loads the target (unless `reuse_load`: the bench home's
    target already holds this source), then each of the K runs measures `verify_migration` and the two row
    diffs on it (issue 18's figures, without the load comparisons)."""
    from datetime import datetime

    from consorcio_assets.tooling.bench import runner

    env = runner.prepare(config)
    scale = runner.ensure_source(config, env)
    progress(
        f"source: {scale['rows_total']:,} rows ({config.simulacoes:,} simulações)"
        + ("; the target's load reused" if reuse_load else "; loading with migrate_all")
    )
    load = {k: None for k in ("seconds", "status", "run_id", "checks_total", "checks_passed")}
    if not reuse_load:
        load = runner.end_to_end(config, env, scale["rows_total"])
        if load["status"] != "SUCCESS":
            raise runner.BenchError(f"migrate_all ended {load['status']}: failed steps {load['failed_steps']}")
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": config.quick,
        "verify_only": True,
        "home": str(config.bench_home),
        "machine": runner.machine(),
        "load": {k: load[k] for k in ("seconds", "status", "run_id", "checks_total", "checks_passed")},
    }
    runs: list[dict] = []
    for i in range(config.runs):
        started = time.perf_counter()
        runs.append({"verify_migration": runner.verify_migration(env), "row_diff": measure(env)})
        progress(f"run {i + 1}/{config.runs} done in {time.perf_counter() - started:,.0f} s")
        if after_run:
            after_run(runs, scale, meta)
    return runs, scale, meta


def build_verify_only(runs, scale, meta) -> dict:
    """The result of a --verify-only bench: the same keys as the full bench's for these figures."""
    from consorcio_assets.tooling.bench import results as report

    derived = [derive(r) for r in runs]
    result: dict = {**meta, "scale": dict(scale), "runs": len(runs)}
    for key in derived[0]:
        s = report.spread([d[key] for d in derived if key in d])
        report._set(result, f"stages.{key}", s["median"])
        parent, leaf = f"stages.{key}".rsplit(".", 1)
        report._set(result, f"{parent}.spread.{leaf}", [s["min"], s["max"]])
    result["raw_runs"] = list(runs)
    targets = [t for t in report.TARGETS if t.key.startswith(("stages.row_diff.", "stages.verify."))]
    result["targets"] = [
        {
            "target": t.label,
            "key": t.key,
            "value": report._get(result, t.key),
            "threshold": t.threshold,
            "op": t.op,
            "met": t.met(report._get(result, t.key)) if scale["simulacoes"] >= t.min_simulacoes else None,
        }
        for t in targets
    ]
    return result


def markdown_verify_only(result) -> str:
    from consorcio_assets.tooling.bench.results import _fig, _num

    s = "stages."
    lines = [
        f"### {result['scale']['simulacoes']:,} simulações, {result['scale']['rows_total']:,} rows — "
        f"verification against reladiff, median of {result['runs']} run(s) [min–max]",
        "",
        "| stage | ours | compared with | theirs | theirs ÷ ours |",
        "|---|---|---|---|---|",
        f"| row-level diff, every table (`rows_match_source`) | {_fig(result, s + 'row_diff.seconds', ' s')} | "
        f"reladiff hashdiff (same tables, keys, columns) | {_fig(result, s + 'row_diff.reladiff_seconds', ' s')} | "
        f"{_fig(result, s + 'row_diff.speedup_vs_reladiff', '×')} |",
        f"| checks alone (`verify_migration`, {_num(result['stages']['verify']['checks'])} checks) | "
        f"{_fig(result, s + 'verify.seconds', ' s')} | reladiff's row-level diff alone | "
        f"{_fig(result, s + 'row_diff.reladiff_seconds', ' s')} | {_fig(result, s + 'verify.vs_reladiff', '×')} |",
        "",
        "| target | value | met |",
        "|---|---|---|",
    ]
    for t in result["targets"]:
        met = {True: "yes", False: "**no**"}.get(t["met"], "not judged at this scale")
        lines.append(f"| {t['target']} | {_num(t['value'])} | {met} |")
    per_table: dict[str, list[float]] = {}
    for tool in TOOLS:
        for table, figures in result["raw_runs"][-1]["row_diff"][tool]["tables"].items():
            per_table.setdefault(table, []).append(figures["seconds"])
    lines += [
        "",
        "last run, seconds per table (ours / reladiff): "
        + ", ".join(f"{t} {_num(a)} / {_num(b)}" for t, (a, b) in per_table.items()),
    ]
    return "\n".join([*lines, "", planted_line(result) or ""])
