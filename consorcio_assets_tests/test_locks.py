"""requirements-dev.lock, what `make` installs the venv from, against pyproject.toml: every dependency of the
package and of the extras the lock is made from is pinned, within its range, with hashes. No network: a stale
lock fails here, and `make lock` refreshes it. (requirements.lock, the image's, is checked in deploy/test_image.py.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]
#: the extras the dev lock is compiled with (Makefile DEV_EXTRAS), those of them that pyproject defines
DEV_EXTRAS = [extra for extra in ("dev", "bench") if extra in EXTRAS]
#: where the lock is resolved (Makefile: --python-version 3.11 --python-platform x86_64-manylinux_2_28)
TARGET = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def pins(text: str) -> dict[str, str]:
    """{canonical name: version} of a `uv pip compile --generate-hashes` file; every pin must carry a hash."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", text)
    found: dict[str, str] = {}
    for entry in entries:
        m = re.match(r"([A-Za-z0-9][\w.\-]*)==([^\s;\\]+)", entry)
        if m is None:
            continue
        assert "--hash=sha256:" in entry, f"{m[1]} is pinned without a hash: run `make lock`"
        found[canonicalize_name(m[1])] = m[2]
    return found


def stale(requirements: list[str], locked: dict[str, str]) -> list[str]:
    """One line per requirement the lock lacks or pins outside its range (markers evaluated for the target)."""
    problems = []
    for raw in requirements:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate(TARGET):
            continue
        name = canonicalize_name(req.name)
        if name not in locked:
            problems.append(f"{req.name} is not pinned")
        elif not req.specifier.contains(locked[name], prereleases=True):
            problems.append(f"{req.name}=={locked[name]} is outside {req.specifier}")
    return problems


def dev_requirements() -> list[str]:
    return [*PYPROJECT["project"]["dependencies"], *(r for extra in DEV_EXTRAS for r in EXTRAS[extra])]


def test_the_dev_lock_pins_every_dependency_of_the_package_and_its_dev_extras_within_range():
    locked = pins((ROOT / "requirements-dev.lock").read_text())
    problems = stale(dev_requirements(), locked)
    assert not problems, "requirements-dev.lock is stale (run `make lock`): " + "; ".join(problems)


@pytest.mark.parametrize("change", ["missing", "outside"])
def test_a_stale_lock_is_caught(change):
    """The check itself: a dropped pin and a pin outside its range both fail it, by name."""
    locked = pins((ROOT / "requirements-dev.lock").read_text())
    name = canonicalize_name(Requirement(PYPROJECT["project"]["dependencies"][0]).name)
    if change == "missing":
        del locked[name]
    else:
        locked[name] = "0.0.1"
    problems = stale(dev_requirements(), locked)
    assert len(problems) == 1 and problems[0].startswith(PYPROJECT["project"]["dependencies"][0].split(">")[0])


def test_a_pin_without_its_hash_is_refused():
    with pytest.raises(AssertionError, match="dagster is pinned without a hash"):
        pins("dagster==1.13.0\n    # via consorcio-migration\n")


def test_the_venv_is_installed_from_the_dev_lock():
    """`make` installs the locked versions with their hashes, then the project itself without resolving again;
    `make lock` writes the dev lock with the extras this test reads."""
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    assert "--no-deps -e ." in makefile
    assert "-o requirements-dev.lock" in makefile
    assert "foreach extra,dev bench" in makefile
