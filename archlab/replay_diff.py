"""Where a replayed run departed from the run it replays, experiment by experiment, and why.

Experiments are matched by id (both runs hand out ids in the same order). The "why" comes from
the replay's own `replay_divergence` events (a prompt now different, an answer or a decision
never recorded); where there is none, the report names the likeliest cause from what changed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from agents.replay import DIVERGENCE
from knowledge.archive import Archive
from knowledge.records import Experiment


@dataclass
class Divergence:
    exp_id: str
    name: str
    changes: list[str] = field(default_factory=list)  # empty: the same experiment
    why: list[str] = field(default_factory=list)
    figure_prompts: int = 0  # prompts that differed only in figures (measured speed varies between runs)

    @property
    def same(self) -> bool:
        return not self.changes


def _fitness(exp: Experiment) -> str:
    return f"{exp.fitness.value:+.6f}" if exp.fitness else "none"


def _outcome(exp: Experiment) -> str:
    return exp.status or exp.stage.value


def _changes(old: Experiment, new: Experiment) -> list[str]:
    changes = []
    for label, a, b in (("name", old.name, new.name), ("parent", old.parent_id, new.parent_id),
                        ("code hash", old.code_hash[:12], new.code_hash[:12]), ("stage", old.stage.value, new.stage.value),
                        ("status", _outcome(old), _outcome(new)), ("fitness", _fitness(old), _fitness(new))):
        if a != b:
            changes.append(f"{label} {a or '-'} -> {b or '-'}")
    return changes


def _likely_cause(old: Experiment, new: Experiment) -> str:
    if old.parent_id != new.parent_id:
        return ("another parent was chosen: the archive differed when it was proposed (with several workers, "
                "which experiment finishes first decides what a proposal sees)")
    if old.code_hash != new.code_hash:
        return "the proposal or the code came out differently from the same recorded inputs"
    if old.code_hash and (old.status != new.status or _fitness(old) != _fitness(new)):
        return ("the same code evaluated differently: see `archlab replay RUN EXP` for what differs "
                "(harness, torch, device, threads, data)")
    return ""


def compare_runs(original: Archive, original_run: str, replayed: Archive, replayed_run: str) -> list[Divergence]:
    old = {e.id: e for e in original.experiments(run=original_run)}
    new = {e.id: e for e in replayed.experiments(run=replayed_run)}
    reasons: dict[str, list[str]] = {}
    figures: dict[str, int] = {}
    for event in replayed.events(run=replayed_run, kind=DIVERGENCE):
        key = event.experiment_id or ""
        if event.data.get("cause") == "prompt figures":
            figures[key] = figures.get(key, 0) + 1
        else:
            reasons.setdefault(key, []).append(event.message)
    report = []
    for exp_id in list(dict.fromkeys([*old, *new])):
        a, b = old.get(exp_id), new.get(exp_id)
        if a is None or b is None:
            present = a or b
            report.append(Divergence(exp_id, present.name, ["not in the replay" if b is None else "not in the original"],
                                     reasons.get(exp_id, []) or ["the replay stopped earlier or went further "
                                                                 "(a budget, a stop, a failure at another step)"]))
            continue
        changes = _changes(a, b)
        why = reasons.get(exp_id, [])
        if changes and not why and _likely_cause(a, b):
            why = [_likely_cause(a, b)]
        report.append(Divergence(exp_id, b.name or a.name, changes, why, figures.get(exp_id, 0)))
    return report


def render_divergence(report: list[Divergence], original_run: str, replayed_run: str,
                      replayed: Archive) -> str:
    diverged = [d for d in report if not d.same]
    lines = [f"replay of run {original_run} as {replayed_run}: {len(report)} experiments, "
             f"{len(report) - len(diverged)} the same, {len(diverged)} diverged"]
    new = {e.id: e for e in replayed.experiments(run=replayed_run)}
    for item in report:
        exp = new.get(item.exp_id)
        summary = (f"code {exp.code_hash[:12] or '-':<12} {_outcome(exp):<10} fitness {_fitness(exp)}"
                   if exp else "")
        mark = "same    " if item.same else "DIVERGED"
        lines.append(f"{item.exp_id} {item.name[:28]:<28} {mark} {summary}")
        lines += [f"    changed: {change}" for change in item.changes]
        lines += [f"    {'why' if item.changes else 'note'}: {why}" for why in item.why]
        if item.figure_prompts:
            lines.append(f"    note: {item.figure_prompts} prompt(s) differed only in figures (measured speed and "
                         "latency vary between runs; the recorded answers were served)")
    return "\n".join(lines)
