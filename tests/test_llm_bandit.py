"""Several models per role: the bandit policy as a pure function, the chooser that keeps one
model per experiment and learns from outcomes, a simulated run where one model is better per
dollar, and the choice recorded with every call over real HTTP."""
from __future__ import annotations

import json
import random

import pytest
from pydantic import ValidationError

from agents.context import ResearcherContext, TaskBrief
from agents.llm.bandit import Arm, ModelChooser, fitness_gain, pick, probabilities
from agents.llm.client import LLMClient
from agents.llm.config import BanditConfig, LLMConfig
from agents.roles import Roles
from knowledge.records import LLMCall
from tests.support.fake_llm_server import Answer, FakeLLMServer

SETTINGS = BanditConfig()
CHEAP, STRONG = "openai/cheap", "openai/strong"


def two_models(**bandit) -> LLMConfig:
    return LLMConfig(models={"default": CHEAP}, model_weights={"researcher": {CHEAP: 2.0, STRONG: 1.0},
                                                               "coder": {CHEAP: 1.0, STRONG: 1.0}},
                     bandit=BanditConfig(**bandit))


def test_one_model_and_fixed_weights() -> None:
    assert probabilities([Arm(CHEAP, 1.0)], SETTINGS) == ([1.0], "only model")
    arms = [Arm(CHEAP, 3.0, 9, 1.0, 0.1), Arm(STRONG, 1.0)]
    assert probabilities(arms, BanditConfig(adapt=False)) == ([0.75, 0.25], "weights")


def test_untried_models_are_warmed_up_by_weight() -> None:
    arms = [Arm(CHEAP, 2.0, outcomes=2), Arm(STRONG, 1.0, outcomes=1), Arm("openai/third", 3.0)]
    assert probabilities(arms, SETTINGS) == ([0.0, 0.25, 0.75], "warm-up")


def test_gain_per_dollar_decides_not_gain_alone() -> None:
    same_gain = [Arm(CHEAP, 1.0, 10, gain=0.5, cost_usd=0.1), Arm(STRONG, 1.0, 10, gain=0.5, cost_usd=1.0)]
    chances, reason = probabilities(same_gain, SETTINGS)
    assert reason == "bandit" and chances[0] > 0.95
    better = [Arm(CHEAP, 1.0, 10, gain=0.1, cost_usd=0.1), Arm(STRONG, 1.0, 10, gain=3.0, cost_usd=1.0)]
    assert probabilities(better, SETTINGS)[0][1] > 0.9


def test_a_rarely_tried_model_is_explored_less_as_its_record_grows() -> None:
    """STRONG earns half CHEAP's gain per dollar: after 2 tries it is still explored, after 20 rarely."""
    def strong_chance(tries: int, weight: float = 1.0, **settings) -> float:
        arms = [Arm(CHEAP, 1.0, 40, gain=1.0, cost_usd=1.0), Arm(STRONG, weight, tries, 0.25 * tries, 0.5 * tries)]
        return probabilities(arms, BanditConfig(**settings))[0][1]

    assert strong_chance(2) > 0.5 > 0.15 > strong_chance(20)
    assert strong_chance(20, weight=4.0) > strong_chance(20)
    assert strong_chance(2, exploration=0.0) < 0.2


def test_nothing_gained_yet_means_weights_and_exploration_only() -> None:
    arms = [Arm(CHEAP, 1.0, 5, 0.0, 0.05), Arm(STRONG, 1.0, 5, 0.0, 0.5)]
    assert probabilities(arms, SETTINGS)[0] == pytest.approx([0.5, 0.5])


def test_pick_and_gain() -> None:
    assert [pick([0.2, 0.0, 0.8], u) for u in (0.0, 0.19, 0.2, 0.99, 1.0)] == [0, 0, 2, 2, 2]
    assert (fitness_gain(0.3, 0.1), fitness_gain(0.05, 0.1), fitness_gain(None, 0.1), fitness_gain(0.2, None)) == \
        pytest.approx((0.2, 0.0, 0.0, 0.2))


def test_one_model_per_experiment_and_outcomes_credited_from_the_calls() -> None:
    chooser = ModelChooser(two_models(), seed=3)
    first = chooser.choose("researcher", "e0002")
    assert all(chooser.choose("researcher", "e0002") == first for _ in range(10))
    coder = chooser.choose("coder", "e0002").model
    calls = [LLMCall(run="r", experiment_id="e0002", role="researcher", model=first.model, prompt=[], cost_usd=0.01),
             LLMCall(run="r", experiment_id="e0002", role="coder", model=coder, prompt=[], cost_usd=0.02),
             LLMCall(run="r", experiment_id="e0002", role="coder", model=coder, prompt=[], cost_usd=0.03),
             LLMCall(run="r", experiment_id="e0002", role="analyst", model=CHEAP, prompt=[], cost_usd=0.5)]
    chooser.settle("e0002", 0.2, calls)
    researcher = {a.model: a for a in chooser.arms("researcher")}
    assert (researcher[first.model].outcomes, researcher[first.model].gain) == (1, 0.2)
    assert {a.model: a for a in chooser.arms("coder")}[coder].cost_usd == pytest.approx(0.05)


def simulate(proposals: int = 60, seed: int = 0, strong: tuple[float, float, float] = (0.01, 0.5, 0.06)) -> list[str]:
    """A run of `proposals` researcher choices between CHEAP (weight 2: $0.002 a proposal, which
    improves its parent 1 time in 10, by 0.02) and STRONG (weight 1; by default $0.01, 1 in 2, by
    0.06: 3x the fitness per dollar). `strong` = (cost, chance, size)."""
    chooser = ModelChooser(two_models(), seed=seed)
    world = random.Random(seed + 1)
    chosen = []
    for number in range(proposals):
        exp = f"e{number:04d}"
        model = chooser.choose("researcher", exp).model
        cost, chance, size = (0.002, 0.1, 0.02) if model == CHEAP else strong
        gain = size if world.random() < chance else 0.0
        chooser.settle(exp, gain, [LLMCall(run="r", experiment_id=exp, role="researcher", model=model, prompt=[],
                                           cost_usd=cost)])
        chosen.append(model)
    return chosen


def share(runs: list[list[str]], start: int, stop: int) -> float:
    return sum(run[start:stop].count(STRONG) for run in runs) / (len(runs) * (stop - start))


def test_in_a_simulated_run_the_choice_moves_to_the_model_that_gains_more_per_dollar() -> None:
    better = [simulate(seed=seed) for seed in range(10)]
    assert share(better, 40, 60) >= 0.75 > 1 / 3  # from its weight's third to most proposals
    assert all(run.count(CHEAP) >= 2 for run in better)  # each model had its warm-up
    worse = [simulate(seed=seed, strong=(0.01, 0.1, 0.02)) for seed in range(10)]  # 5x less per dollar than CHEAP
    assert share(worse, 40, 60) <= 0.25


def test_config_names_weights_per_role_and_refuses_bad_ones() -> None:
    config = two_models()
    assert config.models_for("researcher") == {CHEAP: 2.0, STRONG: 1.0}
    assert config.model_for("researcher") == CHEAP and config.models_for("analyst") == {CHEAP: 1.0}
    with pytest.raises(ValidationError, match="weights must be > 0"):
        LLMConfig(models={"default": CHEAP}, model_weights={"coder": {CHEAP: 0.0}})
    with pytest.raises(ValidationError, match="unknown role"):
        LLMConfig(models={"default": CHEAP}, model_weights={"reviewer": {CHEAP: 1.0}})


def test_every_choice_is_recorded_with_the_call_and_the_chosen_model_is_asked(fake_llm: FakeLLMServer) -> None:
    config = two_models().model_copy(update={"api_base": fake_llm.base_url, "timeout_s": 5, "max_retries": 0})
    records: list[LLMCall] = []
    roles = Roles(LLMClient(config, records.append, run="r", seed=1))
    fake_llm.enqueue(*[Answer(json.dumps({"name": "n", "motivation": "m", "plan": "p"}))] * 6)
    task = TaskBrief(name="mqar", family="mixer", description="recall", contract="the contract")

    for number in range(6):
        roles.propose(ResearcherContext(task=task), f"e{number:04d}")

    assert [r.body["model"] for r in fake_llm.requests] == [c.model.split("/")[1] for c in records]
    for call in records:
        assert call.meta["choice"]["model"] == call.model and call.meta["choice"]["reason"] == "warm-up"
        assert set(call.meta["choice"]["probabilities"]) == {CHEAP, STRONG}
    assert {c.model for c in records} == {CHEAP, STRONG}
