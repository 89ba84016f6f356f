"""Choosing among a role's models: a bandit over models rewarded by fitness gain per dollar,
as ShinkaEvolve adapts its choice of LLM to the models whose proposals improve.

`probabilities` is the policy, a pure function of each model's record; `ModelChooser` holds
the records of a run (thread-safe), keeps one model per role for the whole of an experiment
(so its outcome is attributable), and is fed outcomes as experiments are analysed.
"""
from __future__ import annotations

import math
import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

from agents.llm.config import BanditConfig, LLMConfig
from knowledge.records import LLMCall

ADAPTIVE_ROLES = ("researcher", "coder")  # their models shape the candidate; analyst and judge follow weights


@dataclass(frozen=True)
class Arm:
    """One model of a role and what its proposals earned so far."""

    model: str
    weight: float
    outcomes: int = 0
    gain: float = 0.0      # summed fitness gains over the parents (each >= 0)
    cost_usd: float = 0.0  # summed spend of the role on those experiments


@dataclass(frozen=True)
class Choice:
    model: str
    reason: str  # "only model", "weights", "warm-up", "bandit" or "replayed"
    probabilities: dict[str, float] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)

    def as_record(self) -> dict[str, Any]:
        return {"model": self.model, "reason": self.reason,
                "probabilities": {m: round(p, 4) for m, p in self.probabilities.items()}, "outcomes": self.outcomes}


def fitness_gain(child: float | None, parent: float | None) -> float:
    """What a proposal earned: its improvement over its parent (0 for a failure or a regression)."""
    if child is None:
        return 0.0
    return max(0.0, child - (parent if parent is not None else 0.0))


def shrunk_rates(arms: list[Arm], settings: BanditConfig) -> list[float]:
    """Each model's gain per dollar, shrunk toward the pooled rate of all models by
    `prior_outcomes` pseudo-outcomes, so that a model is not written off after two unlucky tries."""
    pooled = sum(a.gain for a in arms) / max(sum(a.cost_usd for a in arms), settings.cost_floor_usd * sum(a.outcomes for a in arms))
    rates = []
    for arm in arms:
        cost = max(arm.cost_usd, settings.cost_floor_usd * arm.outcomes)
        prior_cost = settings.prior_outcomes * cost / arm.outcomes
        rates.append((arm.gain + pooled * prior_cost) / (cost + prior_cost))
    return rates


def probabilities(arms: list[Arm], settings: BanditConfig) -> tuple[list[float], str]:
    """How likely each model is chosen next, and why.

    Until every model has `warmup` outcomes, the untried ones are chosen by weight. Then each
    model scores its (shrunk) gain per dollar relative to the best model's, plus a UCB bonus
    that shrinks as it is tried, and the choice is a softmax of the scores scaled by the weights.
    """
    weights = [arm.weight for arm in arms]
    if len(arms) == 1:
        return [1.0], "only model"
    if not settings.adapt:
        return _normalise(weights), "weights"
    cold = [arm.outcomes < settings.warmup for arm in arms]
    if any(cold):
        return _normalise([w if c else 0.0 for w, c in zip(weights, cold)]), "warm-up"
    rates = shrunk_rates(arms, settings)
    best = max(rates)
    total = sum(arm.outcomes for arm in arms)
    scores = [(rate / best if best > 0 else 0.0) + settings.exploration * math.sqrt(math.log(total) / arm.outcomes)
              for rate, arm in zip(rates, arms)]
    logits = [math.log(w) + s / settings.temperature for w, s in zip(weights, scores)]
    top = max(logits)
    return _normalise([math.exp(logit - top) for logit in logits]), "bandit"


def pick(chances: list[float], unit: float) -> int:
    """The index drawn by a uniform number `unit` in [0, 1)."""
    running = 0.0
    for index, chance in enumerate(chances):
        running += chance
        if unit < running:
            return index
    return max(i for i, chance in enumerate(chances) if chance > 0)


def outcomes_from_calls(calls: Iterable[LLMCall]) -> dict[tuple[str, str], float]:
    """(role, model) -> dollars spent, for the roles whose models the bandit adapts."""
    spent: dict[tuple[str, str], float] = defaultdict(float)
    for call in calls:
        if call.role in ADAPTIVE_ROLES:
            spent[(call.role, call.model)] += call.cost_usd
    return dict(spent)


def _normalise(values: list[float]) -> list[float]:
    total = sum(values)
    return [v / total for v in values]


class ModelChooser:
    """The run's model records per role; one chooser per client, shared by the experiments in flight."""

    def __init__(self, config: LLMConfig, seed: int = 0) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._records: dict[tuple[str, str], tuple[int, float, float]] = {}  # (role, model) -> outcomes, gain, cost
        self._sticky: dict[tuple[str, str], Choice] = {}

    def arms(self, role: str) -> list[Arm]:
        with self._lock:
            return self._arms(role)

    def choose(self, role: str, experiment_id: str | None = None) -> Choice:
        """The model for `role`; within one experiment, the same model every time."""
        with self._lock:
            key = (role, experiment_id) if experiment_id is not None else None
            if key is not None and key in self._sticky:
                return self._sticky[key]
            arms = self._arms(role)
            chances, reason = probabilities(arms, self._config.bandit)
            chosen = arms[pick(chances, self._rng.random())]
            choice = Choice(chosen.model, reason, {a.model: p for a, p in zip(arms, chances)},
                            {a.model: a.outcomes for a in arms})
            if key is not None:
                self._sticky[key] = choice
            return choice

    def observe(self, role: str, model: str, gain: float, cost_usd: float) -> None:
        with self._lock:
            outcomes, total_gain, total_cost = self._records.get((role, model), (0, 0.0, 0.0))
            self._records[(role, model)] = (outcomes + 1, total_gain + gain, total_cost + cost_usd)

    def settle(self, experiment_id: str, gain: float, calls: Iterable[LLMCall]) -> None:
        """An experiment's outcome, credited to the models that proposed and wrote it."""
        for (role, model), cost in outcomes_from_calls(calls).items():
            self.observe(role, model, gain, cost)
        with self._lock:
            for role in ADAPTIVE_ROLES:
                self._sticky.pop((role, experiment_id), None)

    def _arms(self, role: str) -> list[Arm]:
        return [Arm(model, weight, *self._records.get((role, model), (0, 0.0, 0.0)))
                for model, weight in self._config.models_for(role).items()]
