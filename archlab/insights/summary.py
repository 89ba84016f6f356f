"""A run's standing from its snapshot: progress and ETA, fitness over time with the best so far,
the baseline and the best reference, failures by outcome and reason, and spend."""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from archlab.errors import UsageError
from archlab.insights.records import (ExperimentRow, FailureGroup, FitnessPoint, RunListing, RunProgress,
                                      RunSummary, SpendSummary)
from archlab.insights.snapshot import RunSnapshot
from archlab.rundir import load_run_config, open_for_reading
from archlab.runlock import driver_of
from knowledge.records import FINISHED_STAGES, Experiment, Stage


def _latency(exp: Experiment) -> tuple[int | None, float | None]:
    """The forward latency at the longest measured length."""
    latency = exp.metrics.get("inference_latency_ms") or {}
    lengths = [int(k) for k in latency if str(k).isdigit()]
    if not lengths:
        return None, None
    longest = max(lengths)
    return longest, float(latency[str(longest)])


def row_of(exp: Experiment) -> ExperimentRow:
    length, latency = _latency(exp)
    params = exp.metrics.get("parameters")
    throughput = exp.metrics.get("train_tokens_per_second")
    return ExperimentRow(
        id=exp.id, name=exp.name, proposer=exp.proposer, parent_id=exp.parent_id, stage=exp.stage.value,
        status=exp.status, outcome=outcome(exp), fitness=exp.fitness.value if exp.fitness else None,
        stderr=exp.fitness.stderr if exp.fitness else None, seeds=exp.fitness.seeds if exp.fitness else 0,
        flagged=exp.fitness.flagged if exp.fitness else "", params=int(params) if isinstance(params, int) else None,
        tokens_per_s=float(throughput) if isinstance(throughput, (int, float)) else None,
        latency_ms=latency, latency_length=length, llm_tokens=exp.tokens, cost_usd=exp.cost_usd,
        reason=exp.reason.strip().splitlines()[0] if exp.reason.strip() else "", finished=exp.finished,
        reference=exp.proposer == "reference", created_at=exp.created_at, updated_at=exp.updated_at)


def outcome(exp: Experiment) -> str:
    """What became of an experiment in one word: its evaluator status once it has one, else its stage."""
    if exp.stage in (Stage.FAILED, Stage.REJECTED) and not exp.status:
        return exp.stage.value
    return exp.status or exp.stage.value


def state_of(snapshot: RunSnapshot, done: int) -> str:
    if snapshot.driver:
        return "running"
    return "finished" if done >= snapshot.config.experiments else "stopped"


def _best(experiments: list[Experiment]) -> Experiment | None:
    scored = [e for e in experiments if e.fitness is not None and not e.fitness.flagged]
    return max(scored, key=lambda e: e.fitness.value, default=None)


def fitness_over_time(snapshot: RunSnapshot) -> tuple[FitnessPoint, ...]:
    """Finished proposals in the order they finished; a flagged (implausible) result never
    becomes the best so far."""
    finished = sorted((e for e in snapshot.proposals if e.finished), key=lambda e: (e.updated_at, e.id))
    start, best, points = snapshot.started_at, None, []
    for index, exp in enumerate(finished, start=1):
        value = exp.fitness.value if exp.fitness else None
        if value is not None and not exp.fitness.flagged:
            best = value if best is None else max(best, value)
        points.append(FitnessPoint(id=exp.id, name=exp.name, minutes=max(0.0, exp.updated_at - start) / 60,
                                   index=index, fitness=value, stderr=exp.fitness.stderr if exp.fitness else 0.0,
                                   best_so_far=best, outcome=outcome(exp)))
    return tuple(points)


_NUMBERS = re.compile(r"\d+(\.\d+)?")


def failures(experiments: list[Experiment]) -> tuple[FailureGroup, ...]:
    """Finished experiments that did not come out ok, grouped by outcome and by their reason with
    numbers ignored (so "line 12: ..." and "line 40: ..." of the same problem count together)."""
    groups: dict[tuple[str, str], list[Experiment]] = {}
    for exp in experiments:
        if exp.finished and outcome(exp) != "ok":
            first_line = exp.reason.strip().splitlines()[0] if exp.reason.strip() else ""
            groups.setdefault((outcome(exp), _NUMBERS.sub("#", first_line)), []).append(exp)
    found = [FailureGroup(outcome=key[0], reason=members[0].reason.strip().splitlines()[0] if members[0].reason.strip()
                          else "(no reason recorded)", count=len(members), ids=tuple(e.id for e in members))
             for key, members in groups.items()]
    return tuple(sorted(found, key=lambda g: (-g.count, g.outcome, g.reason)))


def spend(snapshot: RunSnapshot) -> SpendSummary:
    train = sum(e.timings.get("train", 0.0) for e in snapshot.experiments)
    steps = sum(v for e in snapshot.experiments for k, v in e.timings.items() if k != "train")
    return SpendSummary(llm_usd=snapshot.spend.usd, llm_tokens=snapshot.spend.tokens, llm_calls=snapshot.spend.calls,
                        train_s=round(train, 1), steps_s=round(steps, 1))


def progress(snapshot: RunSnapshot) -> RunProgress:
    proposals = snapshot.proposals
    done = sum(e.finished for e in proposals)
    planned = snapshot.config.experiments
    first = min((e.created_at for e in proposals), default=None)
    last = max((e.updated_at for e in snapshot.experiments), default=snapshot.taken_at)
    now = snapshot.taken_at if snapshot.driver else last
    elapsed = now - snapshot.started_at if snapshot.experiments else 0.0
    eta = None
    if snapshot.driver and first is not None and done:
        eta = (snapshot.taken_at - first) / done * max(0, planned - done)
    return RunProgress(
        done=done, planned=planned,
        in_flight=tuple(e.id for e in snapshot.experiments if not e.finished and e.stage is not Stage.AWAITING_REVIEW),
        awaiting=tuple(row_of(e) for e in snapshot.experiments if e.stage is Stage.AWAITING_REVIEW),
        elapsed_s=max(0.0, elapsed), eta_s=eta)


def run_summary(snapshot: RunSnapshot) -> RunSummary:
    config, proposals = snapshot.config, snapshot.proposals
    baseline = snapshot.baseline
    others = [e for e in snapshot.references if baseline is None or e.id != baseline.id]
    best_reference = max((e for e in others if e.fitness is not None), key=lambda e: e.fitness.value, default=None)
    best = _best(proposals)
    run_progress = progress(snapshot)
    counts = Counter(outcome(e) for e in proposals if e.finished)
    return RunSummary(
        name=snapshot.name, task=config.task, budget=config.budget,
        researcher=config.llm.model_for("researcher") if config.llm else "offline", review=config.review,
        state=state_of(snapshot, run_progress.done), driver=snapshot.driver, progress=run_progress,
        best=row_of(best) if best else None, baseline=row_of(baseline) if baseline else None,
        best_reference=row_of(best_reference) if best_reference else None,
        outcomes=tuple(counts.most_common()), fitness=fitness_over_time(snapshot),
        failures=failures(proposals), spend=spend(snapshot))


def run_listing(run_dir: Path) -> RunListing:
    """One run's line in the runs list, from light records only (fast on large archives)."""
    try:
        config = load_run_config(run_dir)
    except UsageError as error:
        return RunListing(name=run_dir.name, task="?", budget="?", state="unreadable", done=0, planned=0, best_id=None,
                          best_name="", best_fitness=None, llm_usd=0.0, driver="", problem=str(error))
    name = config.name or run_dir.name  # the run's name in its archive; pages address it by its folder
    holder = driver_of(run_dir)
    driver = holder.describe() if holder else ""
    try:
        with open_for_reading(run_dir) as archive:
            briefs = [b for b in archive.briefs(run=name) if b.proposer != "reference"]
            usd = archive.spend(name).usd
            scored = [b for b in briefs if b.fitness is not None and not b.flagged]
            best = max(scored, key=lambda b: b.fitness, default=None)
            best_name = archive.get_experiment(best.id).name if best else ""
    except UsageError as error:
        return RunListing(name=run_dir.name, task=config.task, budget=config.budget, state="running" if holder else "new",
                          done=0, planned=config.experiments, best_id=None, best_name="", best_fitness=None,
                          llm_usd=0.0, driver=driver, problem=str(error))
    done = sum(b.stage in FINISHED_STAGES for b in briefs)
    state = "running" if holder else ("finished" if done >= config.experiments else "stopped")
    return RunListing(name=run_dir.name, task=config.task, budget=config.budget, state=state, done=done,
                      planned=config.experiments, best_id=best.id if best else None, best_name=best_name,
                      best_fitness=best.fitness if best else None, llm_usd=usd, driver=driver)

