"""The order of a batch's Glue runs (`run_in_fk_order`), against runs that behave like the job: each stages its
table, waiting (holding its slot) for its parents staged by the batch; a stopped run ends with an error.

Properties over any subset of the catalog, any number of slots and any failing tables: every parent starts
before its children (but for one run nothing waits for, with three slots or more), no slot deadlock, a table
loads only when its parents did, the children of a failed table are skipped (stopped when they were already
running), and every table ends in exactly one outcome."""

from __future__ import annotations

import threading
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from consorcio_assets.catalog import catalog
from consorcio_assets.common.stages import AURORA, TRANSFORMED
from consorcio_assets.defs.glue_aurora import TableRun, critical_path, fk_parents, run_in_fk_order

CAT = catalog()
NAMES = [t.name for t in CAT.load_order()]
#: rows at 1M simulações, in the ratios the generator gives
ROWS_1M = {
    "UnidadeFederativa": 27,
    "Segmento": 6,
    "IndiceCorrecao": 426,
    "Administradora": 14,
    "PlanoComercial": 121,
    "Grupo": 434,
    "Cliente": 600_000,
    "Simulacao": 1_000_000,
    "SimulacaoLance": 300_000,
    "SimulacaoParcela": 7_150_000,
    "vw_SimulacaoResumo": 1_000_000,
    "vw_FunilMensal": 7_000,
}


class Log:
    def warning(self, _message):
        pass

    error = warning


class FakeGlue:
    """Runs as the job does: stage after the parents are staged (waiting meanwhile), or fail, or be stopped."""

    def __init__(self, runs: list[TableRun], failing: set[str]):
        self.batch = {r.table.name for r in runs if r.loads_aurora}
        self.failing = failing
        self.staged = {r.table.name: threading.Event() for r in runs}
        self.stopped: set[str] = set()
        self.started: list[str] = []
        self.deadlocked: list[str] = []
        self.lock = threading.Lock()

    def run_one(self, r: TableRun) -> list:
        name = r.table.name
        with self.lock:
            self.started.append(name)
        parents = [p for p in fk_parents(r.table) if p in self.batch]
        deadline = time.monotonic() + 20
        while not all(self.staged[p].is_set() for p in parents):
            if name in self.stopped:
                raise RuntimeError(f"{name}: Glue run stopped")
            if time.monotonic() > deadline:
                self.deadlocked.append(name)
                raise RuntimeError(f"{name}: waited forever")
            time.sleep(0.001)
        if name in self.failing:
            raise RuntimeError(f"{name}: load failed")
        self.staged[name].set()
        return [name]

    def stop(self, names: list[str]) -> None:
        self.stopped.update(names)


def _runs(names) -> list[TableRun]:
    return [TableRun(t, (TRANSFORMED, AURORA), True) for t in CAT.load_order() if t.name in names]


def _ancestors(name: str, batch: set[str]) -> set[str]:
    out, todo = set(), [name]
    while todo:
        for p in fk_parents(CAT[todo.pop()]):
            if p in batch and p not in out:
                out.add(p)
                todo.append(p)
    return out


@settings(max_examples=60, deadline=None)
@given(
    names=st.sets(st.sampled_from(NAMES), min_size=1),
    workers=st.integers(1, 4),
    failing=st.sets(st.sampled_from(NAMES), max_size=2),
    weighted=st.booleans(),
)
def test_any_batch_runs_parents_first_without_deadlock_and_skips_children_of_failures(
    names, workers, failing, weighted
):
    runs = _runs(names)
    glue = FakeGlue(runs, failing & names)
    weights = critical_path(runs, ROWS_1M) if weighted else None
    results, failures = run_in_fk_order(runs, glue.run_one, workers, Log(), weights=weights, stop=glue.stop)
    assert glue.deadlocked == []
    assert set(results) | set(failures) == names and not set(results) & set(failures)
    order = {name: i for i, name in enumerate(glue.started)}
    ahead = {n for n in order if any(order.get(p, len(order)) > order[n] for p in set(fk_parents(CAT[n])) & names)}
    # at most one run starts before a parent, only with two slots left for the others, and nothing waits for it
    assert len(ahead) <= (1 if workers >= 3 else 0)
    assert not any(ahead & set(fk_parents(CAT[n])) for n in names)
    for name in names:
        ancestors = _ancestors(name, names)
        broken = ancestors & (failing & names)
        if broken:
            assert failures[name].startswith("skipped: parent table(s)"), failures[name]
        elif name in failing:
            assert failures[name] == f"{name}: load failed"
        else:
            assert results[name] == [name]


def test_the_chain_to_the_largest_table_starts_first():
    """simulacao_parcela waits on four generations of small parents: they go first, and it starts before the
    views and leaves that nothing waits on."""
    runs = _runs(set(NAMES))
    glue = FakeGlue(runs, set())
    run_in_fk_order(runs, glue.run_one, 1, Log(), weights=critical_path(runs, ROWS_1M))
    order = glue.started
    chain = _ancestors("SimulacaoParcela", set(NAMES)) | {"SimulacaoParcela"}
    assert set(order[: len(chain)]) == chain
    assert order[-3:] == ["SimulacaoLance", "vw_FunilMensal", "IndiceCorrecao"]
    assert order.index("SimulacaoParcela") < order.index("vw_SimulacaoResumo")


def test_with_slots_to_spare_the_largest_table_streams_from_the_start():
    """With three slots simulacao_parcela starts first, ahead of its parents; its parents still go
    parents-first in the other two slots, and nothing else starts ahead. With two, the chain goes first: one
    slot left would start simulacao only after cliente's whole load."""
    runs = _runs(set(NAMES))
    glue = FakeGlue(runs, set())
    results, failures = run_in_fk_order(runs, glue.run_one, 3, Log(), weights=critical_path(runs, ROWS_1M))
    assert failures == {} and set(results) == set(NAMES)
    order = glue.started
    assert order[0] == "SimulacaoParcela"
    position = {name: i for i, name in enumerate(order)}
    for name in NAMES:
        if name != "SimulacaoParcela":
            assert all(position[p] < position[name] for p in fk_parents(CAT[name]))
    assert order.index("SimulacaoLance") > order.index("Simulacao")
    two = FakeGlue(runs, set())
    run_in_fk_order(runs, two.run_one, 2, Log(), weights=critical_path(runs, ROWS_1M))
    assert two.started.index("SimulacaoParcela") > two.started.index("Simulacao")


def test_a_running_child_of_a_failed_parent_is_stopped_and_reported_skipped():
    runs = _runs({"Segmento", "Administradora", "PlanoComercial"})
    glue = FakeGlue(runs, {"Segmento"})
    results, failures = run_in_fk_order(runs, glue.run_one, 3, Log(), stop=glue.stop)
    assert "PlanoComercial" in glue.started and glue.stopped == {"PlanoComercial"}
    assert failures == {
        "Segmento": "Segmento: load failed",
        "PlanoComercial": "skipped: parent table(s) Segmento failed to load",
    }
    assert results == {"Administradora": ["Administradora"]}
