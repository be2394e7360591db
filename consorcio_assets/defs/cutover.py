"""The cutover rehearsal in Dagster: asset `reports/cutover_readiness` (the evidence pack, its verdict and a
Markdown summary) and job `cutover_rehearsal`. Its check `cutover_go` fails on NO-GO, so the run fails too.
Not part of `migrate_all`: the rehearsal is launched on purpose, once the final load is in."""

from pathlib import Path

import dagster as dg

from consorcio_assets.checks.runbook import check_metadata
from consorcio_assets.common.lake_resource import LakeResource
from consorcio_assets.cutover.evidence_pack import markdown
from consorcio_assets.cutover.rehearsal import GO, rehearse_current
from consorcio_assets.source.resource import SourceDb
from consorcio_assets.target.resource import TargetDb

READINESS = dg.AssetKey(["reports", "cutover_readiness"])
GO_CHECK = "cutover_go"
REPORTS = Path("reports") / "cutover"


@dg.asset(
    key=READINESS,
    group_name="reports",
    kinds={"python", "html"},
    check_specs=[
        dg.AssetCheckSpec(
            GO_CHECK,
            asset=READINESS,
            blocking=True,
            description="GO: source frozen, every ERROR check passes, smoke passes.",
            metadata=check_metadata(GO_CHECK),
        )
    ],
    description="Cutover rehearsal: source frozen, every check, the application smoke workload in a "
    "rolled-back transaction; GO or NO-GO with the evidence pack under reports/cutover/.",
)
def cutover_readiness(context: dg.AssetExecutionContext, source_db: SourceDb, target_db: TargetDb, lake: LakeResource):
    evidence, report = rehearse_current(REPORTS, source_db, target_db, lake)
    summary = markdown(evidence, report)
    context.log.info("cutover rehearsal: %s (%s)", evidence.verdict, report)
    yield dg.MaterializeResult(
        metadata={
            "verdict": evidence.verdict,
            "report": dg.MetadataValue.path(str(report)),
            "summary": dg.MetadataValue.md(summary),
            "checks_failed": sum(c["status"] == "FAIL" for c in evidence.checks),
            "smoke_steps_failed": sum(not s["passed"] for s in evidence.smoke),
            "seconds": evidence.timings.get("total", 0.0),
        }
    )
    yield dg.AssetCheckResult(
        check_name=GO_CHECK,
        passed=evidence.verdict == GO,
        metadata={
            "verdict": evidence.verdict,
            "reasons": "; ".join(evidence.reasons)[:2000],
            **check_metadata(GO_CHECK),
        },
    )


cutover_rehearsal = dg.define_asset_job(
    "cutover_rehearsal",
    selection=dg.AssetSelection.assets(READINESS),
    description="Rehearse the cutover and write the GO/NO-GO evidence pack (changes nothing in Aurora).",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[cutover_readiness], jobs=[cutover_rehearsal])
