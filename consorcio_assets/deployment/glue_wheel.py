"""Builds the Glue job's wheel, dist/glue/consorcio_glue-<version>-py3-none-any.whl: `consorcio_glue` and
`consorcio_core` only (no Dagster side), for the job's `--extra-py-files`. `make glue-wheel` runs it; Terraform
uploads the result (infra/glue.tf). Standard library only, and reproducible: the same sources give the same bytes
(fixed timestamps, sorted entries), so Terraform re-uploads only when the code changed. The sources are taken
where the packages are imported from, so an installed (non-editable) project builds it as well as a checkout.

    python -m consorcio_assets.deployment.glue_wheel [--out DIR]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib
import importlib.metadata
import sys
import zipfile
from pathlib import Path

PACKAGES = ("consorcio_core", "consorcio_glue")
DIST_NAME = "consorcio_glue"
PROJECT = "consorcio-migration"
OUT = Path("dist") / "glue"
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no build time in the bytes


def version() -> str:
    """The project's version (pyproject.toml's, as installed)."""
    return importlib.metadata.version(PROJECT)


def wheel_name(ver: str | None = None) -> str:
    return f"{DIST_NAME}-{ver or version()}-py3-none-any.whl"


def _sources() -> dict[str, bytes]:
    files = {}
    for package in PACKAGES:
        root = Path(str(importlib.import_module(package).__file__)).parent  # a package: never None
        for path in sorted(root.rglob("*.py")):
            files[f"{package}/{path.relative_to(root).as_posix()}"] = path.read_bytes()
    return files


def _metadata(ver: str) -> dict[str, bytes]:
    info = f"{DIST_NAME}-{ver}.dist-info"
    return {
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: consorcio-glue\nVersion: {ver}\n"
            "Summary: The consorcio migration's AWS Glue job (raw zone to transformed zone and "
            "Aurora PostgreSQL)\nRequires-Python: >=3.11\n"
        ).encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: consorcio_assets.deployment.glue_wheel\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
        f"{info}/top_level.txt": "".join(f"{p}\n" for p in PACKAGES).encode(),
    }


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def build(out: Path = OUT) -> Path:
    """The wheel, written to `out`; returns its path."""
    ver = version()
    files = {**_sources(), **_metadata(ver)}
    record = f"{DIST_NAME}-{ver}.dist-info/RECORD"
    files[record] = ("".join(_record_line(n, d) for n, d in files.items()) + f"{record},,\n").encode()
    out.mkdir(parents=True, exist_ok=True)
    path = out / wheel_name(ver)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files.items():
            entry = zipfile.ZipInfo(name, EPOCH)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    print(build(parser.parse_args(argv).out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
