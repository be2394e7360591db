"""Pictures of the docs, drawn as code: `docs/images/architecture.{png,svg}` (the `diagrams` package with the AWS
icon set, from the same catalog and definitions as docs/architecture.md) and `docs/images/er-model.svg` (the
Aurora physical model, keys and foreign keys, as Graphviz dot from the catalog).

Each picture's dot source is committed beside it (`*.dot`, icon paths relative to the `diagrams` package) and the
docs test compares sources, never pixels. Rendering needs Graphviz's `dot` (docs/install-graphviz.sh); building
the sources does not.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

from consorcio_assets.catalog import Catalog, Table
from consorcio_assets.catalog.naming import TARGET_SCHEMA
from consorcio_assets.common.stages import AURORA, S3_RAW, SQLSERVER, STAGES, TRANSFORMED
from consorcio_core.dms_endpoint import EndpointSettings

#: how icon paths appear in committed sources (the `diagrams` install directory differs per machine)
ICONS = "$DIAGRAMS_RESOURCES"
SOURCE_MARK = "<!-- dot source sha256: {} -->"
#: Dagster parts are plain boxes (no icon) sized to their text
BOX = {
    "fixedsize": "false",
    "width": "2.6",
    "height": "0.9",
    "labelloc": "c",
    "style": "rounded,filled",
    "fillcolor": "#FFFFFF",
}


def _icons_dir() -> str:
    import diagrams

    return str(Path(diagrams.__file__).resolve().parent.parent / "resources")


def _portable(source: str) -> str:
    return source.replace(_icons_dir(), ICONS)


def _local(source: str) -> str:
    return source.replace(ICONS, _icons_dir())


# ---------------------------------------------------------------------------------------------- architecture


def architecture_source(cat: Catalog, defs, endpoint: EndpointSettings) -> str:
    """The architecture drawing's dot source: on-premises source, the AWS services per stage, Dagster's assets,
    checks, sensors, schedules and jobs with their counts, and what drives what."""
    from diagrams import Cluster, Diagram, Edge, Node, setcluster, setdiagram
    from diagrams.aws.analytics import Glue
    from diagrams.aws.database import Aurora
    from diagrams.aws.migration import DatabaseMigrationService
    from diagrams.aws.security import SecretsManager
    from diagrams.aws.storage import SimpleStorageServiceS3
    from diagrams.onprem.database import Mssql

    from consorcio_assets.tooling.docs import _checks_by_stage, _raw_file_glob

    checks = _checks_by_stage(defs)
    n = len(cat)
    raw = endpoint.bucket_folder
    diagram = Diagram(
        "consorcio-migration: SQL Server 2017 to Aurora PostgreSQL",
        filename="architecture",
        direction="LR",
        show=False,
        graph_attr={"fontsize": "20", "pad": "1.0"},
    )
    setdiagram(diagram)
    try:
        with Cluster("On-premises"):
            src = Mssql(
                f"SQL Server 2017\nConsorcioSimulacao (dbo)\n{len(cat.base_tables)} tables, {len(cat.views)} views",
                nodeid="src",
            )
        with Cluster("AWS"):
            dms = DatabaseMigrationService("AWS DMS\nfull-load task", nodeid="dms")
            raw_zone = SimpleStorageServiceS3(
                f"S3 raw zone\n{raw}/dbo/<Table>/{_raw_file_glob(endpoint)}", nodeid="raw"
            )
            glue = Glue("AWS Glue job\nglue/consorcio_glue_job.py", nodeid="glue")
            tr = SimpleStorageServiceS3("S3 transformed zone\ntransformed/<table>/part-*.parquet", nodeid="tr")
            aur = Aurora(f"Aurora PostgreSQL\nschema {TARGET_SCHEMA}", nodeid="aur")
            secret = SecretsManager("Secrets Manager\nAurora logins", nodeid="secret")
        with Cluster("Dagster"):
            assets = {}
            for stage in STAGES:
                n_checks = sum(len(v) for v in checks.get(stage, {}).values())
                assets[stage] = Node(f"{stage}/*\n{n} assets, {n_checks} checks", nodeid=f"a_{stage}", **BOX)
            names = lambda items: ", ".join(sorted(i.name for i in items)) or "none"  # noqa: E731
            automation_text = f"sensors: {names(defs.sensors)}\nschedules: {names(defs.schedules)}"
            automation = Node(automation_text.replace(", ", "\n  "), nodeid="automation", **BOX)
            jobs = Node("jobs:\n" + names(defs.jobs).replace(", ", "\n"), nodeid="jobs", **BOX)
        src >> Edge(label="full-load") >> dms >> Edge(label="LOAD files") >> raw_zone >> Edge(label="read") >> glue
        glue >> Edge(label="typed Parquet") >> tr
        glue >> Edge(label="COPY + swap") >> aur
        secret >> Edge(style="dashed", label="login") >> glue
        for a, b in itertools.pairwise(STAGES):
            assets[a] >> assets[b]
        dotted = {"style": "dotted"}
        assets[SQLSERVER] >> Edge(label="observes", **dotted) >> src
        assets[S3_RAW] >> Edge(label="starts the task", **dotted) >> dms
        assets[TRANSFORMED] >> Edge(label="runs via Pipes", **dotted) >> glue
        assets[AURORA] >> Edge(label="runs via Pipes", **dotted) >> glue
        automation >> Edge(label="new LOAD files", **dotted) >> raw_zone
        jobs >> Edge(**dotted) >> assets[SQLSERVER]
        return _portable(diagram.dot.source)
    finally:
        setcluster(None)
        setdiagram(None)


# ---------------------------------------------------------------------------------------------- ER model


def _er_label(table: Table) -> str:
    fk_columns = {c for fk in table.foreign_keys for c in fk.columns}
    unique = {c for _, cols in table.unique_keys for c in cols}
    rows = [
        f'<TR><TD BGCOLOR="#232F3E" COLSPAN="3"><FONT COLOR="white"><B>{table.qualified_target}'
        f"</B>{' (view snapshot)' if table.is_view else ''}</FONT></TD></TR>"
    ]
    for c in table.columns:
        names = [(c.target_name, c.postgres_type, c)] + ([(c.offset_column, "smallint", c)] if c.offset_column else [])
        for name, pg_type, col in names:
            marks = " ".join(
                m
                for m, on in (
                    ("PK", col.name in table.primary_key and name == col.target_name),
                    ("FK", col.name in fk_columns and name == col.target_name),
                    ("UK", col.name in unique and name == col.target_name),
                )
                if on
            )
            null = "" if col.nullable else " NOT NULL"
            rows.append(
                f'<TR><TD ALIGN="LEFT" PORT="{name}">{escape(name)}</TD><TD ALIGN="LEFT">'
                f'{escape(pg_type)}{null}</TD><TD PORT="{name}_out">{marks}</TD></TR>'
            )
    return '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">' + "".join(rows) + "</TABLE>>"


def er_source(cat: Catalog) -> str:
    """The Aurora physical model: every table with its columns, types, PK/FK/UK marks, and one edge per foreign
    key from the child's columns to the parent's."""
    lines = [
        "digraph er_model {",
        '  graph [rankdir=LR, fontname="Helvetica", label="Aurora PostgreSQL: schema '
        f'{TARGET_SCHEMA} (generated from the contract)", labelloc=t, fontsize=18, nodesep=0.4, ranksep=1.2];',
        '  node [shape=plaintext, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", arrowhead=crow, arrowtail=tee, dir=both];',
    ]
    for t in cat.load_order():
        lines.append(f"  {t.target_name} [label={_er_label(t)}];")
    for t in cat.load_order():
        for fk in t.foreign_keys:
            parent = cat[fk.ref_table]
            child_col = t.column(fk.columns[0]).target_name
            parent_col = parent.column(fk.ref_columns[0]).target_name
            lines.append(
                f'  {parent.target_name}:{parent_col}_out:e -> {t.target_name}:{child_col}:w [label="{fk.name}"];'
            )
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- rendering


def render_sources(cat: Catalog, defs, endpoint: EndpointSettings) -> dict[str, str]:
    """File name (under docs/images/) → dot source."""
    return {"architecture.dot": architecture_source(cat, defs, endpoint), "er-model.dot": er_source(cat)}


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _inline_images(svg: str) -> str:
    """Icons embedded as data URIs, so the SVG shows anywhere (dot links them by absolute path)."""

    def embed(match: re.Match) -> str:
        path = Path(match.group(2))
        if not path.is_file():
            return match.group(0)
        return f'{match.group(1)}"data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

    return re.sub(r'(xlink:href=|href=)"([^"]+\.png)"', embed, svg)


def dot_binary() -> str:
    dot = shutil.which("dot")
    if not dot:
        raise RuntimeError(
            "Graphviz's dot is not installed: run `bash docs/install-graphviz.sh` (apt-get install "
            "graphviz) and `consorcio docs` again"
        )
    return dot


def render_image(source: str, fmt: str) -> bytes:
    """`dot -T<fmt>` of a committed source (icon paths made local)."""
    out = subprocess.run([dot_binary(), f"-T{fmt}"], input=_local(source).encode(), capture_output=True, check=True)
    if fmt != "svg":
        return out.stdout
    svg = _inline_images(out.stdout.decode())
    return (svg.rstrip() + "\n" + SOURCE_MARK.format(source_digest(source)) + "\n").encode()


IMAGES = {"architecture.dot": ("png", "svg"), "er-model.dot": ("svg",)}


def write_pictures(images_dir: Path, sources: dict[str, str]) -> list[Path]:
    """Write each dot source and the images rendered from it."""
    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, source in sources.items():
        (images_dir / name).write_text(source)
        written.append(images_dir / name)
        for fmt in IMAGES.get(name, ()):
            path = images_dir / name.replace(".dot", f".{fmt}")
            path.write_bytes(render_image(source, fmt))
            written.append(path)
    return written
