"""The offline analyst: a factual comparison of an evaluated experiment with its parent,
its siblings and the task baseline, with no language model.

Python computes the facts (fitness deltas against their noise, metric deltas, the genes that
changed and their expected effects); prompts/offline_analysis.j2 words them into the same
`Analysis` record the LLM analyst returns, so the archive and the UI treat both alike.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Any, Sequence

from agents.answers import Analysis
from agents.offline.genome import GENE_BY_NAME, Genome
from agents.offline.search import Change, genome_of
from agents.offline.tables import load_gene_effects
from agents.offline.text import as_lines, render_blocks
from knowledge.records import Experiment, Fitness

NOISE_SIGMAS = 2.0   # a fitness difference counts when it exceeds this many combined standard errors
MAX_METRICS = 12     # metric rows shown; the rest are left to the experiment page
TOP_LEVEL_METRICS = ("parameters", "train_tokens_per_second")


@dataclass(frozen=True)
class FitnessDelta:
    """`value - other` with its noise; verdict is better, worse, within_noise or unknown."""

    delta: float | None
    noise: float
    verdict: str
    tentative: bool  # no seed spread on either side: the verdict rests on one seed each


@dataclass(frozen=True)
class MetricDelta:
    name: str
    value: float
    parent: float | None
    baseline: float | None


@dataclass(frozen=True)
class Facts:
    """Everything the analysis text states, computed here so the template only words it."""

    experiment: Experiment
    genome: Genome | None
    parent: Experiment | None
    baseline: Experiment | None
    status: str
    ok: bool
    vs_parent: FitnessDelta
    vs_baseline: FitnessDelta
    metrics: list[MetricDelta]
    changes: list[Change]
    other_values: dict[str, list[Any]]  # changed gene -> its values other than the parent's and this one
    untouched_genes: list[str]          # heaviest-weighted genes this experiment left as in its parent
    sibling_count: int
    sibling_rank: int | None
    best_sibling: Experiment | None
    code_change: str = ""               # outside the design space (a person's file): its code against the parent's


def compare_fitness(value: Fitness | None, other: Fitness | None) -> FitnessDelta:
    """Pure: the difference of two fitnesses and whether it exceeds their combined noise."""
    if value is None or other is None:
        return FitnessDelta(None, 0.0, "unknown", True)
    delta = value.value - other.value
    noise = NOISE_SIGMAS * math.sqrt(value.stderr ** 2 + other.stderr ** 2)
    tentative = noise == 0.0
    if delta > noise:
        verdict = "better"
    elif delta < -noise:
        verdict = "worse"
    else:
        verdict = "within_noise"
    return FitnessDelta(delta, noise, verdict, tentative)


def analyze(exp: Experiment, parent: Experiment | None, siblings: Sequence[Experiment],
            baseline: Experiment | None) -> Analysis:
    """The analysis of an evaluated (or failed) experiment; `siblings` share its parent."""
    facts = gather_facts(exp, parent, siblings, baseline)
    text = render_blocks("offline_analysis.j2", ("summary", "tried", "outcome_vs_expected", "why", "lessons",
                                                  "suggested_next"), f=facts)
    return Analysis(summary=text["summary"], tried=text["tried"], outcome_vs_expected=text["outcome_vs_expected"],
                    why=text["why"], lessons=as_lines(text["lessons"]),
                    suggested_next=as_lines(text["suggested_next"]))


def gather_facts(exp: Experiment, parent: Experiment | None, siblings: Sequence[Experiment],
                 baseline: Experiment | None) -> Facts:
    effects = load_gene_effects()
    if baseline is not None and baseline.id == exp.id:
        baseline = None  # the baseline's own analysis: nothing to compare it with
    genome = genome_of(exp)
    parent_genome = genome_of(parent) if parent is not None else None
    changes = []
    if genome is not None and parent_genome is not None:
        changes = [Change(gene, old, new, effects.effect(gene, new))
                   for gene, (old, new) in parent_genome.differences(genome).items()]
    other_values = {change.gene: [value for value in GENE_BY_NAME[change.gene].choices
                                  if value not in (change.old, change.new)] for change in changes}
    changed = {change.gene for change in changes}
    untouched = sorted((gene for gene in effects.weights if gene not in changed),
                       key=lambda gene: -effects.weights[gene])[:3]
    ok = exp.status == "ok"
    scored_siblings = [s for s in siblings if s.id != exp.id and s.status == "ok" and s.fitness is not None]
    rank = None
    if ok and exp.fitness is not None:
        rank = 1 + sum(1 for s in scored_siblings if s.fitness.value > exp.fitness.value)
    best_sibling = max(scored_siblings, key=lambda s: (s.fitness.value, s.id), default=None)
    return Facts(
        experiment=exp, genome=genome, parent=parent, baseline=baseline, status=exp.status or "not evaluated",
        ok=ok,
        vs_parent=compare_fitness(_ok_fitness(exp), _ok_fitness(parent)),
        vs_baseline=compare_fitness(_ok_fitness(exp), _ok_fitness(baseline)),
        metrics=metric_deltas(exp, parent, baseline) if ok else [],
        changes=changes, other_values=other_values, untouched_genes=untouched,
        sibling_count=len(scored_siblings), sibling_rank=rank, best_sibling=best_sibling,
        code_change=code_change(exp, parent) if genome is None else "",
    )


def code_change(exp: Experiment, parent: Experiment | None) -> str:
    """How the file that was trained differs from its parent's, in changed lines."""
    if parent is None or not parent.code or not exp.code:
        return "no parent file to compare with"
    added = removed = 0
    for line in difflib.unified_diff(parent.code.splitlines(), exp.code.splitlines(), lineterm="", n=0):
        if line.startswith(("+++", "---")):
            continue
        added += line.startswith("+")
        removed += line.startswith("-")
    if not added and not removed:
        return f"the same code as the parent {parent.id}'s file"
    return f"{added} lines added and {removed} removed against the parent {parent.id}'s file"


def metric_deltas(exp: Experiment, parent: Experiment | None, baseline: Experiment | None) -> list[MetricDelta]:
    """Numeric metrics of `exp` beside the parent's and baseline's; constants shared by all are dropped."""
    own = numeric_metrics(exp.metrics)
    theirs = [numeric_metrics(other.metrics) if other is not None and other.status == "ok" else {}
              for other in (parent, baseline)]
    rows = []
    for name in sorted(own):
        parent_value, baseline_value = (values.get(name) for values in theirs)
        if parent_value in (None, own[name]) and baseline_value in (None, own[name]):
            continue  # a task constant (lengths, vocabulary) or a metric nobody else has
        rows.append(MetricDelta(name, own[name], parent_value, baseline_value))
    return rows[:MAX_METRICS]


def numeric_metrics(result: dict[str, Any]) -> dict[str, float]:
    """Task metrics (one nesting level flattened as `name.key`) and the cost figures, from eval.json."""
    found: dict[str, float] = {}
    for name, value in (result.get("metrics") or {}).items():
        if isinstance(value, dict):
            for key, inner in value.items():
                if _is_number(inner):
                    found[f"{name}.{key}"] = float(inner)
        elif _is_number(value):
            found[name] = float(value)
    for name in TOP_LEVEL_METRICS:
        if _is_number(result.get(name)):
            found[name] = float(result[name])
    return found


def _ok_fitness(exp: Experiment | None) -> Fitness | None:
    return exp.fitness if exp is not None and exp.status == "ok" else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
