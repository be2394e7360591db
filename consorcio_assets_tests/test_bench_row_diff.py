"""The bench's row-diff comparison: planted differences go in and come out again, a tool that misses or adds a
key fails the run by name, and the figures are ratios of the same run."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from consorcio_assets.tooling.bench import planted, row_diff

TABLES = """
CREATE SCHEMA consorcio;
CREATE TABLE consorcio.simulacao (simulacao_id bigint PRIMARY KEY, atualizada_em timestamp(6) NOT NULL,
                                  versao_linha bigint NOT NULL DEFAULT 0);
CREATE TABLE consorcio.simulacao_parcela (simulacao_id bigint REFERENCES consorcio.simulacao,
    numero_parcela smallint, valor_total numeric(15,2) NOT NULL, PRIMARY KEY (simulacao_id, numero_parcela));
-- a rowversion-like trigger: planting or restoring must not fire it
CREATE FUNCTION consorcio.stamp() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.versao_linha := OLD.versao_linha + 1; RETURN NEW; END $$;
CREATE TRIGGER stamp BEFORE UPDATE ON consorcio.simulacao FOR EACH ROW EXECUTE FUNCTION consorcio.stamp();
INSERT INTO consorcio.simulacao SELECT i, timestamp '2025-01-01' + i * interval '1 minute' FROM generate_series(1, 40) i;
INSERT INTO consorcio.simulacao_parcela SELECT s, p, s * 10 + p + 0.35 FROM generate_series(1, 40) s,
                                                                           generate_series(1, 3) p;
"""
SNAPSHOT = (
    "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM (SELECT * FROM consorcio.simulacao) t "
    "UNION ALL SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM consorcio.simulacao_parcela t"
)


@pytest.fixture
def target(fresh_db) -> str:
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(TABLES)
    return fresh_db


def _snapshot(url: str) -> list:
    with psycopg.connect(url) as conn:
        return conn.execute(SNAPSHOT).fetchall()


def test_plant_damages_three_keys_and_restore_puts_every_row_back(target):
    before = _snapshot(target)
    plants = planted.plant(target)
    assert [(p.table, p.kind, p.column) for p in plants] == [
        ("simulacao_parcela", "changed", "valor_total"),
        ("simulacao_parcela", "missing", None),
        ("simulacao", "changed", "atualizada_em"),
    ]
    assert len({p.key[0] for p in plants}) == 3  # three different simulations
    (changed, missing, moved) = plants
    with psycopg.connect(target) as conn:
        value = conn.execute(
            "SELECT valor_total FROM consorcio.simulacao_parcela WHERE simulacao_id = %s AND numero_parcela = %s",
            changed.key,
        ).fetchone()[0]
        assert value == Decimal(int(changed.key[0]) * 10 + int(changed.key[1])) + Decimal("0.36")  # one centavo more
        assert (
            conn.execute(
                "SELECT count(*) FROM consorcio.simulacao_parcela WHERE simulacao_id = %s AND numero_parcela = %s",
                missing.key,
            ).fetchone()[0]
            == 0
        )
        stamp, version = conn.execute(
            "SELECT atualizada_em, versao_linha FROM consorcio.simulacao WHERE simulacao_id = %s", moved.key
        ).fetchone()
        assert stamp.microsecond == 1000 and version == 0  # a millisecond later; the trigger did not fire
    assert _snapshot(target) != before
    assert planted.expected(plants) == {
        "simulacao_parcela": {"changed": [list(changed.key)], "missing": [list(missing.key)]},
        "simulacao": {"changed": [list(moved.key)]},
    }
    assert planted.restore(target) == 3
    assert _snapshot(target) == before
    assert planted.restore(target) == 0  # nothing left to restore: the scratch schema is gone


def test_a_plant_left_by_a_stopped_run_is_restored_before_planting_again(target):
    before = _snapshot(target)
    planted.plant(target)
    planted.plant(target)  # the first run "stopped" before restoring
    planted.restore(target)
    assert _snapshot(target) == before


def _result(**tables) -> dict:
    empty = {"missing": [], "extra": [], "changed": []}
    return {"seconds": 1.0, "tables": {name: {**empty, **kinds} for name, kinds in tables.items()}}


EXPECTED = {"simulacao_parcela": {"changed": [["7", "1"]], "missing": [["9", "2"]]}, "simulacao": {"changed": [["12"]]}}


def test_a_tool_must_find_exactly_the_planted_keys():
    exact = _result(
        simulacao_parcela={"changed": [["7", "1"]], "missing": [["9", "2"]]},
        simulacao={"changed": [["12"]]},
        cliente={},
    )
    row_diff.verify_found("ours", exact, EXPECTED)
    missed = _result(simulacao_parcela={"changed": [["7", "1"]]}, simulacao={"changed": [["12"]]})
    with pytest.raises(
        row_diff.PlantedNotFound,
        match=r"reladiff .*simulacao_parcela missing: found \[\], "
        r"planted \[\['9', '2'\]\]",
    ):
        row_diff.verify_found("reladiff", missed, EXPECTED)
    extra = _result(
        simulacao_parcela={"changed": [["7", "1"]], "missing": [["9", "2"]]},
        simulacao={"changed": [["12"]]},
        cliente={"changed": [["abc"]]},
    )
    with pytest.raises(row_diff.PlantedNotFound, match=r"cliente changed: found \[\['abc'\]\], planted \[\]"):
        row_diff.verify_found("ours", extra, EXPECTED)


def test_row_diff_figures_are_ratios_of_the_same_run():
    run = {
        "row_diff": {
            "ours": {"seconds": 2.0, "peak_rss_mb": 100.0},
            "reladiff": {"seconds": 9.0, "peak_rss_mb": 200.0},
        },
        "verify_migration": {"seconds": 6.0, "wall_seconds": 8.0, "total": 151},
    }
    out = row_diff.derive(run)
    assert out["row_diff.speedup_vs_reladiff"] == 4.5  # reladiff's seconds ÷ ours
    assert out["verify.vs_reladiff"] == 1.5  # reladiff's row diff ÷ our whole verify
    assert out["verify.seconds"] == 6.0 and out["verify.checks"] == 151
    assert row_diff.derive({}) == {}


def test_the_report_puts_our_diff_and_verify_beside_reladiff_and_judges_them_at_1m():
    from consorcio_assets.tooling.bench import results as report
    from consorcio_assets_tests.test_bench import _run

    def run(ours: float, theirs: float, verify: float) -> dict:
        return {
            **_run(1.0),
            "verify_migration": {"seconds": verify, "wall_seconds": verify + 2, "total": 159, "peak_rss_mb": 300.0},
            "row_diff": {
                "planted": EXPECTED,
                "ours": {"seconds": ours, "peak_rss_mb": 100.0, "found": EXPECTED},
                "reladiff": {"seconds": theirs, "peak_rss_mb": 200.0, "found": EXPECTED},
            },
        }

    runs = [run(2.0, 10.0, 8.0), run(4.0, 10.0, 12.0), run(5.0, 30.0, 10.0)]
    result = report.build(runs, {"simulacoes": 1_000_000, "rows_total": 900, "tables": {}}, {})
    stages = result["stages"]
    assert stages["row_diff"]["speedup_vs_reladiff"] == 5.0  # median of 5, 2.5, 6 (same-run ratios)
    assert stages["row_diff"]["spread"]["speedup_vs_reladiff"] == [2.5, 6.0]
    assert stages["verify"]["seconds"] == 10.0 and stages["verify"]["vs_reladiff"] == 1.25  # of 1.25, 0.83, 3
    met = {t["key"]: t["met"] for t in result["targets"]}
    assert met["stages.row_diff.speedup_vs_reladiff"] is True and met["stages.verify.vs_reladiff"] is True
    assert "stages.aurora_load.vs_awswrangler" not in met and "stages.checks.pct_of_load" not in met
    table = report.markdown(result)
    assert (
        "| row-level diff, every table (`rows_match_source`) | 4.00 s [2.00–5.00] | reladiff hashdiff (same "
        "tables, keys, columns) | 10.0 s [10.0–30.0] | 5.00× [2.50–6.00] |"
    ) in table
    assert "| checks alone (`verify_migration`, 159 checks) | 10.0 s [8.00–12.0] |" in table
    assert "found exactly by ours and by reladiff in 3 of 3 run(s)" in table
    small = report.build(runs[:1], {"simulacoes": 20_000, "rows_total": 900, "tables": {}}, {})
    assert {t["key"]: t["met"] for t in small["targets"]}["stages.verify.vs_reladiff"] is None  # judged at 1M


def test_a_verify_only_result_has_the_same_keys_and_judges_the_two_targets():
    def run(ours: float, theirs: float, verify: float) -> dict:
        tables = {"simulacao": {"seconds": ours}}
        return {
            "verify_migration": {"seconds": verify, "wall_seconds": verify + 2, "total": 159},
            "row_diff": {
                "planted": EXPECTED,
                "ours": {"seconds": ours, "peak_rss_mb": 1.0, "found": EXPECTED, "tables": tables},
                "reladiff": {
                    "seconds": theirs,
                    "peak_rss_mb": 1.0,
                    "found": EXPECTED,
                    "tables": {"simulacao": {"seconds": theirs}},
                },
            },
        }

    result = row_diff.build_verify_only(
        [run(10.0, 50.0, 40.0), run(20.0, 30.0, 20.0)],
        {"simulacoes": 1_000_000, "rows_total": 9},
        {"verify_only": True},
    )
    assert result["stages"]["row_diff"]["speedup_vs_reladiff"] == 3.25  # median of 5 and 1.5
    assert result["stages"]["verify"]["vs_reladiff"] == 1.375  # median of 1.25 and 1.5
    assert [(t["key"], t["met"]) for t in result["targets"]] == [
        ("stages.row_diff.speedup_vs_reladiff", True),
        ("stages.verify.vs_reladiff", True),
    ]
    table = row_diff.markdown_verify_only(result)
    assert "| checks alone (`verify_migration`, 159 checks) | 30.0 s [20.0–40.0] |" in table
    assert "simulacao 20.0 / 30.0" in table and "in 2 of 2 run(s)" in table
