"""Skipping training by a zero-cost proxy, only where the run's own archive says it predicts fitness.

A proxy costs a fraction of a second; training costs minutes. But a proxy that does not rank
candidates as training does would throw good ones away, so the gate (`[yardstick.proxy_gate]`,
off by default) opens only when the proxy's Spearman rho with trained fitness, over at least
`min_candidates` trained candidates of this run, reaches `min_rho`. Then a proposal whose score
falls below the `skip_quantile` quantile of the run's recorded scores stops after the proxies
(the worker gets the threshold in its spec) and is recorded as `skipped`, without a fitness.

The quantile is taken over every candidate with a score, skipped ones included: taken over the
trained ones alone, each skip would raise the bar for the next (the trained set drifts upwards).
References and the cascade's extra seeds are never gated. Pure functions over experiments.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

from agents.config import ProxyGate
from agents.yardstick import proxies_of
from evaluator.stats import quantile, spearman_rho
from knowledge.records import Experiment


@dataclass(frozen=True)
class GateDecision:
    """Whether the gate is open for the next proposal, and why (or why not), in words."""

    active: bool
    proxy: str
    threshold: float | None   # the score below which training is skipped; None when the gate is off
    rho: float | None         # Spearman rho of the proxy with trained fitness
    measured: int             # trained candidates with the proxy and a plausible fitness
    scored: int               # candidates with a recorded score (the quantile's population)
    skip_quantile: float
    why: str

    @property
    def gate(self) -> tuple[str, float] | None:
        """What the worker needs: (proxy, threshold), or None when nothing is skipped."""
        return (self.proxy, self.threshold) if self.active and self.threshold is not None else None

    def skip_reason(self, score: float) -> str:
        return (f"skipped by the {self.proxy} proxy: {score:.4g} below the {self.skip_quantile:.0%} quantile "
                f"{self.threshold:.4g} of {self.scored} scored candidates (Spearman rho {self.rho:+.2f} with "
                f"fitness over {self.measured} trained ones); not trained, so no fitness")

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _trained(exp: Experiment) -> bool:
    return exp.status == "ok" and exp.fitness is not None and not exp.fitness.flagged


def decide(config: ProxyGate, experiments: Sequence[Experiment]) -> GateDecision:
    """The gate for the next proposal, from the run's experiments so far."""
    name = config.proxy
    scores = [p[name] for e in experiments if name in (p := proxies_of(e))]
    pairs = [(proxies_of(e)[name], e.fitness.value) for e in experiments if _trained(e) and name in proxies_of(e)]
    rho = spearman_rho([p[0] for p in pairs], [p[1] for p in pairs]) if len(pairs) >= 3 else None

    def closed(why: str) -> GateDecision:
        return GateDecision(False, name, None, rho, len(pairs), len(scores), config.skip_quantile, why)
    if not config.enabled:
        return closed("the proxy gate is off ([yardstick.proxy_gate] enabled = false)")
    if len(pairs) < config.min_candidates:
        return closed(f"the gate stayed off: {len(pairs)} trained candidates have a {name} score, fewer than "
                      f"min_candidates = {config.min_candidates}")
    if rho is None or rho < config.min_rho:
        shown = "undefined (a constant side)" if rho is None else f"{rho:+.2f}"
        return closed(f"the gate stayed off: the {name} proxy's Spearman rho with fitness is {shown} over "
                      f"{len(pairs)} trained candidates, below min_rho = {config.min_rho:g}")
    threshold = quantile(scores, config.skip_quantile)
    return GateDecision(True, name, threshold, rho, len(pairs), len(scores), config.skip_quantile,
                        f"the gate is on: the {name} proxy's Spearman rho with fitness is {rho:+.2f} over "
                        f"{len(pairs)} trained candidates; below {threshold:.4g} (the {config.skip_quantile:.0%} "
                        f"quantile of {len(scores)} scores) training is skipped")
