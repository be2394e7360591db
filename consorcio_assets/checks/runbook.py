"""The runbook of the checks, beside the checks: their families, what to do when one fails, and the link every
check spec carries to its section of docs/runbook.md (generated from this text by `consorcio docs`)."""

from __future__ import annotations

import re

from consorcio_assets import PROJECT_ROOT

RUNBOOK_CHECKS = """\
## Checks: what they mean and what to do when one fails

Every failing check names the table and the first offending primary keys, and carries the SQL that reproduces
it. Check metadata never holds a PII value: look rows up by key in the database itself.

### Raw zone (`s3_raw`)
- **Row count matches the source**: rows in the LOAD files equal the source row count at load time and DMS's
  `FullLoadRows`, and the table's data version (rows, checksum, highest rowversion) is the same right before and
  right after its extraction. *Fails when* DMS skipped or duplicated rows, or the source was written during the
  load (the description names the table and how many rows were written after the start: the files are not a
  consistent snapshot). *Do*: check the task's table statistics and CloudWatch log for errors; for a changed
  source, freeze it (stop the application's writers, `ALTER DATABASE ConsorcioSimulacao SET READ_ONLY WITH
  ROLLBACK IMMEDIATE`), then re-materialize the table's `s3_raw` asset (a reload replaces the table's files
  atomically; the previous ones are archived).
- **Schema matches the DMS mapping**: the files' Parquet schema equals the catalog's DMS type mapping. *Fails
  when* the source schema drifted or the endpoint settings changed (e.g. `ParquetTimestampInMillisecond`).
  *Do*: compare with the schema drift check; fix the contract or the settings file, never the files.
- **No unexpected files**: only the current load's LOAD files under the table's prefix. *Fails when* a previous
  load was not archived or someone wrote there. *Do*: move the stray files out, reload the table.

### Rejected rows (`aurora`)
- **No rejected rows**: the Glue job rejected no row for violating its target type. In `reject` mode such rows
  go to `consorcio.consorcio_rejects` (keys and reasons only). *Do*: read the reasons there, fix the source
  row or the type mapping, reload the table; in `fail` mode the Glue run itself failed naming table, column,
  file and key.

### Stage parity
Row counts are equal across `sqlserver` → `s3_raw` (and DMS `FullLoadRows`) → `transformed` → `aurora`, per table
and view. *Fails when* a stage lost or duplicated rows. *Do*: the first stage whose count differs is where to
look; re-materialize from that stage on.

### Column aggregates
Per table, sums of numeric and money columns, min/max of dates and timestamps, NULL counts per column and total
text lengths, computed inside SQL Server and inside PostgreSQL and compared exactly. *Fails when* values changed
in flight (rounding, truncation, time zone shifts, NULLs). *Do*: the metadata names the column; run the row-level
check on that table to find the rows.

### Row-level reconciliation (hashdiff)
The primary-key range is split into segments whose count and checksum of a canonical row text are compared
between the two databases; mismatching segments are bisected down to the rows. *Fails when* any row differs or is
missing. *Do*: the metadata lists up to 20 differing keys and the mismatch count per column; compare those rows
in both databases and reload the table.

### Precision (100 ns and LOB truncation)
DATETIME2(7) keeps 100 ns; PostgreSQL and DMS keep microseconds, so a non-zero seventh digit is lost: a **WARN**
with the count, expected and accepted. A LOB value longer than DMS's `LobMaxSize` (limited LOB mode) is truncated
silently by DMS: an **ERROR**, data was lost. *Do*: raise `LobMaxSize` in `consorcio_assets/dms/task_settings.json`
above the longest value (the pre-flight reports it), apply `infra/`, and reload the table.

### Keys and constraints
In Aurora, primary keys are unique and not null, every foreign key resolves, unique keys hold, and the contract's
CHECK constraints hold; the check reports rows, not just a failed `ALTER`. *Fails when* a parent table was not
reloaded with its children, or data violates the contract. *Do*: reload parents before children (the load order
below), or fix the source rows named by key.

### Business rules
The rules of `consorcio_assets/contract/business-rules.md` (instalment formulas to the centavo, schedule sums and
completeness, bid rules, plan ranges, group/plan consistency, CPF/CNPJ check digits, CEP within the UF range, phone
format, date ordering), evaluated in Aurora and runnable on the source. *Fails when* the migration changed a value,
or the source already broke the rule. *Do*: run the reproducing SQL on the source: if it fails there too, it is a
source data issue for the business owner; otherwise reload the table.

### Views
The migrated view snapshot (`consorcio_snapshot.<view>`) equals the live view the application reads
(`consorcio.<view>`, the contract's SELECT translated to PostgreSQL over the migrated base tables). *Fails when*
the snapshot and the base tables come from different moments, a base table differs, the application wrote since
the load, or the live view is missing. *Do*: reload the view together with its base tables (the next publish
re-creates a missing live view).

### Application semantics and cutover
`identity_continues`: each IDENTITY's next value is above the highest loaded id. `application_semantics`: the
contract's DEFAULTs are attached, each ROWVERSION column has its trigger and the sequence is past every stored
value, computed columns are generated by PostgreSQL. *Fails when* a load bypassed the Glue job's DDL or someone
altered the table. *Do*: reload the table (the DDL comes from the catalog). `cutover_go` (asset
`reports/cutover_readiness`): the cutover rehearsal's verdict; its report lists why it is NO-GO.

### Schema drift
The Aurora tables' columns, types, nullability and constraints equal the catalog, and the source's columns have
not been added, removed or retyped since the catalog was built (a warning before a load). *Do*: update
`consorcio_assets/contract/consorcio_simulacao.sql` (the catalog, the DMS mappings, the DDL and these docs
follow), run `consorcio docs` and `python -m consorcio_assets.deployment.infra_sync`, apply `infra/`.
"""

#: check name pattern → the runbook section that explains it (first match wins)
CHECK_FAMILIES: list[tuple[str, str]] = [
    (r"^raw_", "Raw zone"),
    (r"rejected", "Rejected rows"),
    (r"row_count", "Stage parity"),
    (r"aggregate", "Column aggregates"),
    (r"^rows_match|hashdiff", "Row-level reconciliation (hashdiff)"),
    (r"100ns|lob|precision|truncat", "Precision (100 ns and LOB truncation)"),
    (r"primary_key|foreign_key|unique_key|constraint", "Keys and constraints"),
    (r"^rule_", "Business rules"),
    (r"^view", "Views"),
    (r"identity_continues|application_semantics|cutover", "Application semantics and cutover"),
    (r"schema", "Schema drift"),
]


OTHER_FAMILY = "other (see the check's description in the UI)"


def check_family(name: str) -> str:
    return next((family for pattern, family in CHECK_FAMILIES if re.search(pattern, name)), OTHER_FAMILY)


RUNBOOK_PATH = PROJECT_ROOT / "docs" / "runbook.md"
#: the runbook section on the check families, for checks no family matches
CHECKS_HEADING = "## Checks: what they mean and what to do when one fails"


def heading_anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"^#+\s*", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def check_anchor(name: str) -> str:
    """The runbook anchor of the section that explains a check."""
    family = check_family(name)
    heading = next((line for line in RUNBOOK_CHECKS.splitlines() if line.startswith(f"### {family}")), CHECKS_HEADING)
    return heading_anchor(heading)


def runbook_link(name: str) -> str:
    """URL of the runbook section of a check (the repository's docs/runbook.md)."""
    return f"{RUNBOOK_PATH.as_uri()}#{check_anchor(name)}"


def check_metadata(name: str) -> dict:
    """Metadata every check spec carries: the link to what to do when it fails."""
    import dagster as dg

    return {"runbook": dg.MetadataValue.url(runbook_link(name))}
