"""Integrity and reconciliation checks: every row and every centavo arrived, or which did not.

Each module computes inside the databases (SQLAlchemy Core, compiled per dialect by `sql`) and returns a
`report.Outcome` (stage, table, check, passed, severity, counts, first offending keys, reproducing SQL,
never a PII value); `defs/checks.py` turns them into Dagster asset checks.

- `sides`      how the source and the target store each catalog column; the canonical row text
- `parity`     row counts: transformed Parquet footers and Aurora against the source
- `aggregates` per-column SUM / MIN / MAX / NULL counts / text lengths against the source
- `hashdiff`   segment checksums bisected down to the differing primary keys and columns
- `precision`  DATETIME2(7) 100 ns digits dropped (WARN), LOB values truncated (ERROR)
- `constraints` primary, unique and foreign keys and the contract's CHECKs, as row-listing queries
- `business_rules` the rules of business-rules.md, written once, run in Aurora or on the source
- `views`      view snapshots against their recomputation from the migrated base tables
- `schema`     Aurora's physical model against the catalog; source drift since the catalog (WARN)
"""
