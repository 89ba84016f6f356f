"""Parent and reference sampling: deterministic under a seed, never from failures, not greedy."""
from __future__ import annotations

import pytest

from knowledge.archive import Archive
from knowledge.records import ExperimentBrief, Experiment, Fitness, Stage
from knowledge.selection import (
    NoParentError, can_be_parent, qd_cell, sample_parent, sample_parent_qd, sample_parent_uct, sample_references,
)


def brief(exp_id: str, fitness: float | None = None, parent: str | None = None, status: str = "ok",
          stage: Stage = Stage.ANALYZED, proposer: str = "offline", params: float | None = 5.0,
          exponent: float | None = 1.0, structure: str = "", flagged: bool = False,
          weight: float = 1.0) -> ExperimentBrief:
    return ExperimentBrief(id=exp_id, parent_id=parent, proposer=proposer, stage=stage, status=status,
                           fitness=fitness, flagged=flagged, structure_hash=structure or f"s-{exp_id}",
                           log10_params=params, complexity_exponent=exponent, selection_weight=weight)


def archive_with_failures() -> list[ExperimentBrief]:
    """Good experiments plus failures that would win on fitness if they were allowed."""
    items = [brief("ref-a", 0.0, proposer="reference"), brief("ref-b", -0.1, proposer="reference", params=6.0)]
    for i in range(30):
        items.append(brief(f"e{i:03d}", fitness=0.01 * i, parent="ref-a" if i % 2 else "ref-b",
                           params=5.0 + (i % 4) * 0.3, exponent=1.0 + (i % 3) * 0.2))
    items += [
        brief("leaky", 9.0, parent="ref-a", status="leaky", stage=Stage.FAILED),
        brief("invalid", 9.0, parent="ref-a", status="invalid", stage=Stage.FAILED),
        brief("crashed", None, parent="ref-a", status="crashed", stage=Stage.FAILED),
        brief("flagged", 9.0, parent="ref-a", flagged=True),
        brief("inflight", 9.0, parent="ref-a", status="", stage=Stage.CODED),
        brief("rejected-ref", None, proposer="reference", status="", stage=Stage.REJECTED),
        brief("slow-ref", 9.0, proposer="reference", status="too_slow", stage=Stage.FAILED),
    ]
    return items


NEVER = {"leaky", "invalid", "crashed", "flagged", "inflight", "rejected-ref", "slow-ref"}


def test_same_seed_same_choice_and_seeds_vary_the_choice():
    items = archive_with_failures()
    for sampler in (sample_parent_uct, sample_parent_qd):
        assert [sampler(items, s).id for s in range(20)] == [sampler(items, s).id for s in range(20)]
    assert len({sample_parent_qd(items, s).id for s in range(40)}) > 3
    parent = items[10]
    assert [r.id for r in sample_references(items, parent, 3, 7)] == \
        [r.id for r in sample_references(items, parent, 3, 7)]


def test_failed_leaky_invalid_flagged_and_in_flight_are_never_parents():
    items = archive_with_failures()
    for seed in range(60):
        for strategy in ("uct", "qd", "mixed"):
            assert sample_parent(items, seed, strategy).id not in NEVER
        assert not NEVER & {r.id for r in sample_references(items, items[5], 4, seed)}


def test_vectorised_eligibility_agrees_with_can_be_parent():
    items = archive_with_failures() + [brief("nan", float("nan")), brief("inf", float("inf"))]
    for item in items:  # one record at a time: the vectorised rule must say what can_be_parent says
        if can_be_parent(item):
            assert sample_parent_uct([item], 0) is item
        else:
            with pytest.raises(NoParentError):
                sample_parent_uct([item], 0)
    assert {b.id for b in items if not can_be_parent(b)} == NEVER | {"nan", "inf"}


def test_references_are_parents_even_in_an_empty_archive():
    refs = [brief("ref-a", proposer="reference", status="", stage=Stage.PROPOSED, params=None, exponent=None),
            brief("ref-b", proposer="reference", status="", stage=Stage.PROPOSED, params=None, exponent=None)]
    assert {sample_parent_uct(refs, s).id for s in range(20)} == {"ref-a", "ref-b"}  # ties broken by seed
    assert sample_parent_qd(refs, 0).id in {"ref-a", "ref-b"}


def test_no_eligible_parent_is_a_clear_error():
    with pytest.raises(NoParentError, match="seed the archive"):
        sample_parent_uct([brief("bad", 1.0, status="leaky", stage=Stage.FAILED)], 0)
    with pytest.raises(NoParentError):
        sample_parent_qd([], 0)


def test_uct_moves_on_from_a_heavily_explored_parent():
    best = brief("best", 1.0)
    fresh = brief("fresh", 0.9)
    children = [brief(f"c{i}", 0.0, parent="best") for i in range(50)]
    assert sample_parent_uct([best, fresh, *children], 0).id == "fresh"
    assert sample_parent_uct([best, fresh, brief("low", 0.0)], 0).id == "best"  # equal visits: fitness decides


def test_the_judges_weight_reorders_close_candidates_but_not_distant_ones():
    plain, novel = brief("plain", 0.50), brief("novel", 0.48, weight=1.3)
    floor = brief("floor", 0.0)
    assert sample_parent_uct([plain, brief("novel", 0.48), floor], 0).id == "plain"
    assert sample_parent_uct([plain, novel, floor], 0).id == "novel"
    assert sample_parent_uct([brief("strong", 1.0), brief("weak", 0.2, weight=1.3), floor], 0).id == "strong"
    # in a quality-diversity cell the elite is the best weighted candidate too
    same_cell = dict(params=5.0, exponent=1.0)
    cell = [brief("plain", 0.50, **same_cell), brief("novel", 0.48, weight=1.3, **same_cell), brief("floor", 0.0, **same_cell)]
    assert {sample_parent_qd(cell, s).id for s in range(10)} == {"novel"}


def test_uct_counts_grandchildren_and_handles_out_of_order_input():
    chain = [brief("g2", 0.0, parent="g1"), brief("g1", 0.0, parent="root"), brief("root", 1.0),
             brief("other", 0.95)]
    chain += [brief(f"x{i}", 0.0, parent="g2") for i in range(30)]
    assert sample_parent_uct(chain, 0).id == "other"  # root's 32 descendants count against it


def test_qd_returns_only_cell_elites_and_covers_cells():
    items = archive_with_failures()
    eligible = [b for b in items if can_be_parent(b)]
    elites = {}
    for b in eligible:
        cell = qd_cell(b)
        if cell not in elites or (b.fitness or 0) > (elites[cell].fitness or 0):
            elites[cell] = b
    picked = {sample_parent_qd(items, s).id for s in range(300)}
    assert picked == {b.id for b in elites.values()}


def test_qd_axes_are_validated():
    with pytest.raises(ValueError, match="descriptors"):
        sample_parent_qd(archive_with_failures(), 0, axes={"fitness": 0.1})
    with pytest.raises(ValueError, match="positive"):
        sample_parent_qd(archive_with_failures(), 0, axes={"latency_ms": 0.0})


def test_references_differ_from_the_parent_and_each_other():
    items = archive_with_failures()
    items.append(brief("clone", 0.5, parent="ref-a", structure="s-e029"))  # same program as e029
    parent = next(b for b in items if b.id == "e029")
    for seed in range(20):
        refs = sample_references(items, parent, 3, seed)
        assert len(refs) == 3 and parent.id not in {r.id for r in refs}
        assert "clone" not in {r.id for r in refs}
        assert len({r.structure_hash for r in refs}) == 3
    # e029 descends from ref-a; the first pick comes from another lineage (ref-b's)
    roots = {r.id: ("ref-a" if r.parent_id == "ref-a" or r.id == "ref-a" else "ref-b")
             for r in items if r.id.startswith(("e", "ref"))}
    assert all(roots[sample_references(items, parent, 1, s)[0].id] == "ref-b" for s in range(20))


def test_full_experiments_and_archive_briefs_give_the_same_choice(tmp_path):
    experiments = [Experiment(id="ref", run="r", proposer="reference", stage=Stage.ANALYZED, status="ok",
                              fitness=Fitness(value=0.0), metrics={"parameters": 1000})]
    experiments += [Experiment(id=f"e{i}", run="r", parent_id="ref", stage=Stage.ANALYZED, status="ok",
                               fitness=Fitness(value=i / 10), metrics={"parameters": 10 ** (3 + i % 3)})
                    for i in range(8)]
    with Archive.open(tmp_path) as archive:
        archive.add_experiments(experiments)
        briefs = archive.briefs()
    for seed in range(10):
        assert sample_parent_uct(experiments, seed).id == sample_parent_uct(briefs, seed).id
        assert sample_parent_qd(experiments, seed).id == sample_parent_qd(briefs, seed).id
    assert isinstance(sample_parent_qd(experiments, 0), Experiment)


def test_unknown_strategy_is_refused():
    with pytest.raises(ValueError, match="uct"):
        sample_parent(archive_with_failures(), 0, "greedy")
