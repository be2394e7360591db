"""`consorcio bench [--simulacoes N] [--quick] [--runs K]`: measure the migration, write the JSON result and
print the Markdown table."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from consorcio_assets.tooling.bench import chart
from consorcio_assets.tooling.bench import results as report
from consorcio_assets.tooling.bench.runner import BenchConfig, BenchError, run_bench

#: optional: run on databases of an existing server instead of the bench home's own embedded one
SERVER_OVERRIDES = {
    "CONSORCIO_BENCH_TARGET_URL": "CONSORCIO_TARGET_URL",
    "CONSORCIO_BENCH_DAGSTER_URL": "DAGSTER_PG_URL",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="consorcio bench", description=" ".join(__doc__.split()))
    p.add_argument("--simulacoes", type=int, default=1_000_000, help="scale of the seeded source (default 1,000,000)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI-sized: 5k-row sample for the slow comparisons, no single-stream load run (default: off)",
    )
    p.add_argument(
        "--runs", type=int, default=None, help="measurements to take the median of (default 3, 1 with --quick)"
    )
    p.add_argument("--seed", type=int, default=42, help="random seed of the generator (default 42)")
    p.add_argument("--home", type=Path, help="bench CONSORCIO_HOME (default .data/bench/<simulacoes>)")
    p.add_argument("--output", type=Path, help="result JSON (default bench/results/<date>.json)")
    p.add_argument(
        "--verify-only",
        action="store_true",
        help="load once, then measure only verify_migration and the row diffs beside reladiff per run",
    )
    p.add_argument(
        "--reuse-load",
        action="store_true",
        help="with --verify-only: no migrate_all, the bench home's target already holds this source",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="a result JSON at another scale: reports peak RSS growth against it (memory flatness)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1 or args.simulacoes < 1:
        print("error: --runs and --simulacoes must be positive", file=sys.stderr)
        return 2
    env = {to: os.environ[var] for var, to in SERVER_OVERRIDES.items() if os.environ.get(var)}
    config = BenchConfig(
        simulacoes=args.simulacoes, runs=runs, quick=args.quick, home=args.home, seed=args.seed, env=env
    )
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None
    output = args.output or Path("bench") / "results" / f"{date.today().isoformat()}.json"

    if args.verify_only:
        return _verify_only(config, output, args.reuse_load)

    def save(runs, scale, meta) -> dict:
        result = report.build(runs, scale, {**meta, "runs_planned": config.runs}, baseline)
        report.write_json(result, output)
        chart.write_chart(result, output)
        return result

    try:
        measured, scale, meta = run_bench(
            config, progress=lambda text: print(text, file=sys.stderr, flush=True), after_run=save
        )
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    result = save(measured, scale, meta)
    print(report.markdown(result))
    print(f"\nwritten {output} and {chart.chart_path(output)}")
    failed = [s for s in result["end_to_end"]["status"] if s != "SUCCESS"]
    if failed:
        print(
            f"error: {len(failed)} of {len(result['end_to_end']['status'])} migrate_all run(s) did not succeed "
            f"(failed steps and checks are under raw_runs)",
            file=sys.stderr,
        )
        return 3
    return 0


def _verify_only(config: BenchConfig, output: Path, reuse_load: bool) -> int:
    """`--verify-only`: issue 18's verification figures alone (no chart: they are seconds, not rows/s)."""
    from consorcio_assets.tooling.bench import row_diff

    def save(runs, scale, meta) -> dict:
        result = row_diff.build_verify_only(runs, scale, {**meta, "runs_planned": config.runs})
        report.write_json(result, output)
        return result

    try:
        measured, scale, meta = row_diff.run_verify_only(
            config,
            progress=lambda text: print(text, file=sys.stderr, flush=True),
            after_run=save,
            reuse_load=reuse_load,
        )
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(row_diff.markdown_verify_only(save(measured, scale, meta)))
    print(f"\nwritten {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
