"""The deployment image, statically (no Docker engine here): its Dockerfile's properties, what the build context
lets in, and requirements.lock against pyproject's runtime dependencies."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^\s*(\w+)\s+(.*)$", joined, re.M)]


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        result[-1].append(ins)
    return result


DOCKERFILE = (ROOT / "Dockerfile").read_text()
STAGES = stages(DOCKERFILE)
FINAL = STAGES[-1]


def _args(stage, name: str) -> list[str]:
    return [a for i, a in stage if i == name]


def test_multi_stage_on_the_slim_python_that_requires_python_allows():
    assert len(STAGES) >= 2
    bases = [_args(s, "FROM")[0].split()[0] for s in STAGES]
    versions = {re.fullmatch(r"python:(\d+\.\d+)-slim(?:-\w+)?", b)[1] for b in bases}
    assert len(versions) == 1, bases
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(f"{versions.pop()}.0")
    assert any("--from=build /opt/venv /opt/venv" in a for a in _args(FINAL, "COPY"))


def test_the_project_is_installed_from_the_lock_and_not_editable():
    build = " ".join(a for s in STAGES[:-1] for a in _args(s, "RUN"))
    assert "--require-hashes" in build and "-r requirements.lock" in build and "--no-deps" in build
    assert not re.search(r"pip install[^&]*\s(-e|--editable)\s", build + " ".join(_args(FINAL, "RUN")))
    assert "pip wheel" in build and "/wheels/*.whl" in build


def test_final_stage_runs_unprivileged_without_build_tools_or_secrets():
    users = _args(FINAL, "USER")
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    final_runs = " ".join(_args(FINAL, "RUN"))
    assert not re.search(r"\b(gcc|g\+\+|build-essential|make|pip install|apt-get install)\b", final_runs)
    for name, args in instructions(DOCKERFILE):
        if name in ("ARG", "ENV"):
            assert not re.search(r"(?i)(password|secret|token|access_key|_url=)", args), args
    assert _args(FINAL, "HEALTHCHECK"), "no HEALTHCHECK in the final stage"
    assert _args(FINAL, "ENTRYPOINT") == ['["python", "-m", "consorcio_assets.deployment.deploy_check"]']


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        p = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p + "/*") or path.startswith(p + "/"):
            ignored = not negate
    return ignored


def test_build_context_keeps_state_and_tests_out_and_lets_the_copies_in():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".data/pg/base",
        ".venv/bin/python",
        "consorcio_assets_tests/test_docs.py",
        ".git/HEAD",
        "bench/README.md",
    ):
        assert _ignored(path, patterns), path
    package_data = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "consorcio_assets").rglob("*")
        if p.is_file() and p.suffix in (".sql", ".md", ".json", ".yaml") and "__pycache__" not in p.parts
    ]
    assert package_data and [p for p in package_data if _ignored(p, patterns)] == [], "package data left out"
    copied = [a.split()[-2] for s in STAGES for a in _args(s, "COPY") if not a.startswith("--from")]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not _ignored(source.rstrip("/"), patterns), f"COPY {source} is excluded by .dockerignore"


def _lock() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9][\w.\-]*)==([^\s;\\]+)", text, re.M))
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
    assert all("--hash=sha256:" in e for e in entries if "==" in e), "every pin carries its hashes"
    return {canonicalize_name(k): v for k, v in pins.items()}


def test_the_lock_pins_every_runtime_dependency_within_its_range():
    lock = _lock()
    wanted = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["project"]["optional-dependencies"]["aws"]]
    for spec in map(Requirement, wanted):
        name = canonicalize_name(spec.name)
        assert name in lock, f"{spec.name} is not in requirements.lock: run `make lock`"
        assert spec.specifier.contains(lock[name], prereleases=True), f"{spec.name}=={lock[name]} not {spec.specifier}"


def test_the_lock_holds_no_development_tool():
    dev = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert (dev - runtime) & set(_lock()) == set()


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins():
    """Each pinned distribution installed here at the same version: its own requirements are pinned too."""
    lock, checked = _lock(), 0
    for name, version in lock.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if dist.version != version:
            continue
        checked += 1
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker and not req.marker.evaluate(
                {"extra": "", "python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux"}
            ):
                continue
            assert canonicalize_name(req.name) in lock, f"{name} needs {req.name}, which the lock lacks"
    assert checked >= 10, f"only {checked} locked versions are installed here: compare with `make lock`"


def test_the_project_works_installed_as_a_wheel(tmp_path):
    """What the image's build stage does with what it copies: build the wheel, install it non-editable (here:
    unpacked on PYTHONPATH, ahead of the checkout's editable finder), and load the code location from it."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    for source in [a.split()[-2] for s in STAGES[:-1] for a in _args(s, "COPY")]:
        if source == "requirements.lock":
            continue
        origin = ROOT / source.rstrip("/")
        if origin.is_dir():
            shutil.copytree(origin, src / source.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (src / source).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(origin, src / source)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(tmp_path / "w"), str(src)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    [wheel] = (tmp_path / "w").glob("*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    assert (site / "consorcio_assets" / "contract" / "consorcio_simulacao.sql").is_file()
    assert not list(site.rglob("pyproject.toml"))
    probe = (
        "import json, consorcio_assets; from consorcio_assets.definitions import defs; d = defs(); "
        "print(json.dumps({'file': consorcio_assets.__file__, "
        "'assets': len(list(d.resolve_asset_graph().get_all_asset_keys())), "
        "'jobs': sorted(j.name for j in d.resolve_all_job_defs())}))"
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "CONSORCIO_HOME": str(run_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=run_dir, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["file"].startswith(str(site)), "the probe imported the checkout, not the wheel"
    assert "migrate_all" in loaded["jobs"] and loaded["assets"] >= 4 * 12
