"""The summary's check cell: a check the run planned but never evaluated is counted as not run, never as passed."""

from consorcio_assets.summary import check_cell


def test_checks_that_did_not_run_are_not_counted_as_passed():
    results = [("transformed:row_count_matches_source", True, "ERROR")]
    planned = {"transformed:row_count_matches_source", "aurora:rule_documents", "aurora:primary_key_valid"}
    cell, not_run = check_cell(results, planned)
    assert cell == "1/3 ok, 2 not run"
    assert not_run == ["aurora:primary_key_valid", "aurora:rule_documents"]


def test_every_planned_check_evaluated():
    results = [("aurora:a", True, "ERROR"), ("aurora:b", False, "WARN")]
    assert check_cell(results, {"aurora:a", "aurora:b"}) == ("1/2 ok", [])
    assert check_cell(results, set()) == ("1/2 ok", [])  # a run recorded before planning events: what ran
