"""The ladder of fidelities in a real lab: a promising experiment climbs a rung (real sandboxed
evaluations at the smoke budget stand in for the larger rung), the baseline is measured there
once, fitness becomes the rung's, a weak experiment stays below, and a second climb runs nothing."""
from __future__ import annotations

from pathlib import Path

import pytest

from agents.config import Rung, YardstickConfig
from agents.steps import run_evaluation
from agents.team import Team
from agents.team_offline import OfflineAnalyst, OfflineCoder, OfflineResearcher
from agents.ladder import climb
from archlab.insights.yardstick import yardstick_figures
from evaluator.suite import task_score
from knowledge.records import Experiment, Fitness, Stage
from tests.loop_support import BASELINE_NAME, lab_in

RUN = "ladder"


@pytest.mark.slow  # two sandboxed smoke evaluations: ~20 s idle, ~45 s on a busy 2-core machine
def test_a_promising_experiment_climbs_and_its_fitness_is_the_rungs(tmp_path: Path):
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME)
    ran: list[tuple[str, str, int]] = []

    def evaluate(lab, exp, seed, budget):
        ran.append((exp.id, budget, seed))
        return run_evaluation(lab, exp, seed, budget)
    with lab_in(tmp_path, team, RUN) as lab:
        lab.config = lab.config.model_copy(update={"yardstick": YardstickConfig(ladder=[Rung(budget="smoke", seeds=1)])})
        for exp_id, name, value in (("e0002", "short_convolution", 0.3), ("e0003", "linear_attention", -0.5)):
            lab.archive.add_experiment(Experiment(id=exp_id, run=RUN, name=name, proposer="reference",
                                                  stage=Stage.EVALUATED, status="ok", fitness=Fitness(value=value)))
        climb(lab, "e0003", evaluate)
        assert ran == []  # the weaker of the two stays on the run's rung
        climb(lab, "e0002", evaluate)
        assert ran == [("e0001", "smoke", 0), ("e0002", "smoke", 0)]  # the baseline first, once
        climbed = lab.archive.get_experiment("e0002")
        assert climbed.fitness.rung == "smoke" and climbed.fitness.seeds == 1
        assert climbed.metrics["rungs"]["cpu"]["fitness"]["value"] == 0.3  # the lower rung is kept
        assert climbed.metrics["rungs"]["smoke"]["seeds"][0]["metrics"]["proxies"]["grad_norm"] > 0
        assert "smoke" in lab.archive.get_experiment("e0001").metrics["rungs"]
        climb(lab, "e0002", evaluate)
        assert len(ran) == 2  # recorded rungs are not run again
        (rungs,) = yardstick_figures(lab.archive.experiments(run=RUN), lab.config).rungs
        assert (rungs.low, rungs.high, rungs.candidates) == ("cpu", "smoke", 2)  # the baseline ran on both too
        assert any("ladder" == e.kind and "rung smoke" in e.message for e in lab.archive.events(run=RUN))


@pytest.mark.slow  # four sandboxed smoke evaluations
def test_a_suite_run_scores_every_task_against_the_baseline_and_the_ceiling(tmp_path: Path):
    from agents.config import SearchConfig
    from agents.scoring import score_experiment
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME)
    with lab_in(tmp_path, team, RUN) as lab:
        lab.config = lab.config.model_copy(update={
            "budget": "smoke", "search": SearchConfig(cascade_seeds=0),
            "yardstick": YardstickConfig(tasks=["mqar", "bytelm"], efficiency_weight=0.0)})
        baseline = lab.archive.get_experiment("e0001")
        scored = score_experiment(lab, baseline, lambda seed, task=None: run_evaluation(lab, baseline, seed, task=task))
        assert [r.task for r in scored.results] == ["mqar", "bytelm"] and scored.fitness.value == 0.0
        lab.update("e0001", metrics=scored.metrics, fitness=scored.fitness)
        ceiling = lab.archive.add_experiment(Experiment(id="e0002", run=RUN, name="softmax_attention",
                                                        proposer="reference", stage=Stage.APPROVED))
        scored = score_experiment(lab, ceiling, lambda seed, task=None: run_evaluation(lab, ceiling, seed, task=task))
        mine = scored.metrics["suite"]["seeds"][0]["results"]
        base = lab.archive.get_experiment("e0001").metrics["suite"]["seeds"][0]["results"]
        # the ceiling scores 1 on a task, or less where its lead is below the minimum gap (as at smoke)
        expected = {t: task_score(t, mine[t]["metrics"], base[t]["metrics"], mine[t]["metrics"]) for t in mine}
        assert all(0 < v <= 1 for v in expected.values())
        assert scored.fitness.value == pytest.approx(sum(expected.values()) / 2)
        assert scored.fitness.components["task:bytelm"] == pytest.approx(expected["bytelm"])


@pytest.mark.slow  # six sandboxed smoke evaluations (3 experiments x 2 tasks): ~40 s idle
def test_a_suite_ladder_scores_each_rung_between_that_rungs_baseline_and_ceiling(tmp_path: Path):
    """cpu -> smoke over mqar + bytelm: the baseline and the ceiling are measured at the rung once, every
    task of every seed is kept, fitness is the rung's suite score, and a kill mid-climb resumes it."""
    from agents.stopping import StopRequested
    from agents.suite_scoring import score_rung, weights_of
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME)
    ran: list[tuple[str, str, str]] = []
    kill = {"e0003"}

    def evaluate(lab, exp, seed, budget, task):
        if exp.id in kill:
            kill.discard(exp.id)
            raise StopRequested("killed mid-climb")
        ran.append((exp.id, task, budget))
        return run_evaluation(lab, exp, seed, budget, task=task)
    with lab_in(tmp_path, team, RUN) as lab:
        lab.config = lab.config.model_copy(update={"yardstick": YardstickConfig(
            tasks=["mqar", "bytelm"], efficiency_weight=0.0, ladder=[Rung(budget="smoke", seeds=1, promote_fraction=0.5)])})
        for exp_id, name, value in (("e0002", "softmax_attention", 1.0), ("e0003", "short_convolution", 0.3)):
            lab.archive.add_experiment(Experiment(id=exp_id, run=RUN, name=name, proposer="reference",
                                                  stage=Stage.EVALUATED, status="ok", fitness=Fitness(value=value)))
        climb(lab, "e0002", evaluate)
        assert ran == []  # the ceiling does not climb: it is measured wherever anyone climbs
        with pytest.raises(StopRequested):
            climb(lab, "e0003", evaluate)
        assert "rungs" not in lab.archive.get_experiment("e0003").metrics
        climb(lab, "e0003", evaluate)  # resumed: the references measured before the kill are not run again
        assert ran == [(e, t, "smoke") for e in ("e0001", "e0002", "e0003") for t in ("mqar", "bytelm")]
        climb(lab, "e0003", evaluate)
        assert len(ran) == 6  # recorded rungs are not run again

        entry = {e: lab.archive.get_experiment(e).metrics["rungs"]["smoke"] for e in ("e0001", "e0002", "e0003")}
        results = {e: entry[e]["suite"]["seeds"][0]["results"] for e in entry}
        assert all(r[t]["status"] == "ok" for r in results.values() for t in ("mqar", "bytelm"))
        expected = {t: task_score(t, results["e0003"][t]["metrics"], results["e0001"][t]["metrics"],
                                  results["e0002"][t]["metrics"]) for t in ("mqar", "bytelm")}
        climbed = lab.archive.get_experiment("e0003")
        assert climbed.fitness.rung == "smoke" and climbed.fitness.seeds == 1
        assert climbed.fitness.value == pytest.approx(sum(expected.values()) / 2)
        assert climbed.fitness.components["task:bytelm"] == pytest.approx(expected["bytelm"])
        assert climbed.metrics["rungs"]["cpu"]["fitness"]["value"] == 0.3  # the lower rung is kept
        assert entry["e0001"]["fitness"]["value"] == 0.0 and entry["e0002"]["fitness"]["rung"] == "smoke"
        # the rung's scale is its own references': without the ceiling the score would use the minimum gap
        assert score_rung(weights_of(lab), entry["e0003"]["suite"], entry["e0001"]["suite"], None).notes
        assert not climbed.fitness.notes
        (rungs,) = yardstick_figures(lab.archive.experiments(run=RUN), lab.config).rungs
        assert (rungs.low, rungs.high, rungs.candidates) == ("cpu", "smoke", 3)


def test_the_proxy_gate_skips_training_only_when_the_archive_justifies_it(tmp_path: Path):
    """One sandboxed evaluation stops after the proxies (skipped, no fitness, the reason says why);
    with too few trained candidates the gate stays off and the record says so (a leaky candidate
    keeps this one fast: it fails its checks)."""
    from agents.config import ProxyGate
    from agents.steps import analyze_step, evaluate_step
    from tests.loop_candidates import CUMULATIVE_MEAN, WHOLE_SEQUENCE_MEAN
    team = Team(OfflineResearcher(), OfflineCoder(), OfflineAnalyst(), OfflineAnalyst(), BASELINE_NAME)
    with lab_in(tmp_path, team, RUN) as lab:
        gate = ProxyGate(enabled=True, proxy="grad_norm", min_rho=0.5, min_candidates=3, skip_quantile=0.5)
        lab.config = lab.config.model_copy(update={"budget": "smoke", "yardstick": YardstickConfig(proxy_gate=gate)})
        for k in range(3):  # trained candidates whose grad_norm ranks them as fitness does, far above any real score
            lab.archive.add_experiment(Experiment(
                id=f"e000{k + 2}", run=RUN, name=f"trained-{k}", proposer="offline", stage=Stage.ANALYZED,
                status="ok", fitness=Fitness(value=k / 10, seeds=1), metrics={"metrics": {"proxies": {"grad_norm": 1e9 + k}}}))
        lab.archive.add_experiment(Experiment(id="e0005", run=RUN, name="cumulative-mean", proposer="offline",
                                              stage=Stage.APPROVED, code=CUMULATIVE_MEAN))
        evaluate_step(lab, "e0005")
        skipped = lab.archive.get_experiment("e0005")
        assert skipped.status == "skipped" and skipped.fitness is None and skipped.stage is Stage.EVALUATED
        assert skipped.reason.startswith("skipped by the grad_norm proxy: ") and "50% quantile" in skipped.reason
        assert "rho +1.00" in skipped.reason and "train" not in skipped.metrics["timings"]  # training never started
        assert skipped.metrics["proxy_gate"]["active"] and skipped.metrics["metrics"]["proxies"]["grad_norm"] < 1e9
        analyze_step(lab, "e0005")  # the run goes on: analysed like any finished experiment, no climb
        assert lab.archive.get_experiment("e0005").stage is Stage.ANALYZED

        lab.config = lab.config.model_copy(update={"yardstick": YardstickConfig(
            proxy_gate=gate.model_copy(update={"min_candidates": 10}))})
        lab.archive.add_experiment(Experiment(id="e0006", run=RUN, name="whole-mean", proposer="offline",
                                              stage=Stage.APPROVED, code=WHOLE_SEQUENCE_MEAN))
        evaluate_step(lab, "e0006")
        judged = lab.archive.get_experiment("e0006")
        assert judged.status == "leaky" and not judged.metrics["proxy_gate"]["active"]
        assert "fewer than min_candidates = 10" in judged.metrics["proxy_gate"]["why"]
        logged = [e.message for e in lab.archive.events(run=RUN) if e.kind == "proxy_gate"]
        assert logged[0] == skipped.reason and "the gate stayed off" in logged[1]
