"""The embedded server's data directory is narrowed back to 0700 when a copy of the home widened it."""

import stat

import pytest

from consorcio_assets.target.postgres import keep_private


@pytest.mark.parametrize("mode", [0o711, 0o755, 0o777, 0o701])
def test_widened_pgdata_is_narrowed(tmp_path, mode):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    pgdata.chmod(mode)
    keep_private(pgdata)
    assert stat.S_IMODE(pgdata.stat().st_mode) == 0o700


@pytest.mark.parametrize("mode", [0o700, 0o750])
def test_accepted_modes_are_left_alone(tmp_path, mode):
    pgdata = tmp_path / "pg"
    pgdata.mkdir()
    pgdata.chmod(mode)
    keep_private(pgdata)
    assert stat.S_IMODE(pgdata.stat().st_mode) == mode


def test_missing_pgdata_is_left_to_initdb(tmp_path):
    keep_private(tmp_path / "pg")
    assert not (tmp_path / "pg").exists()
