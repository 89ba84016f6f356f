"""A run's standing from its snapshot: progress and ETA, fitness over time with the best so far,
the baseline and the best reference, failures by outcome and reason, and spend."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
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


def experiment_rows(snapshot: RunSnapshot) -> tuple[ExperimentRow, ...]:
    """Every experiment's row in creation order. Rows are kept per experiment record, so after a
    refresh only the experiments that changed get new rows; what the summary derives from the
    rows is then remade only where the rows it reads changed."""
    return snapshot.memo.of_run("experiment_rows", lambda: snapshot.memo.of_each("row", snapshot.experiments, row_of))


def outcome(exp: Experiment) -> str:
    """What became of an experiment in one word: its evaluator status once it has one, else its stage."""
    if exp.stage in (Stage.FAILED, Stage.REJECTED) and not exp.status:
        return exp.stage.value
    return exp.status or exp.stage.value


def state_of(snapshot: RunSnapshot, done: int) -> str:
    if snapshot.driver:
        return "running"
    return "finished" if done >= snapshot.config.experiments else "stopped"


def _finished_proposals(snapshot: RunSnapshot) -> tuple[ExperimentRow, ...]:
    return snapshot.memo.of_run("finished_proposals", lambda: tuple(
        r for r in experiment_rows(snapshot) if r.finished and not r.reference))


def fitness_over_time(snapshot: RunSnapshot) -> tuple[FitnessPoint, ...]:
    """Finished proposals in the order they finished; a flagged (implausible) result never
    becomes the best so far. Remade only when a finished proposal changed (not on every write
    of the experiments in flight)."""
    finished, start = _finished_proposals(snapshot), snapshot.started_at
    return snapshot.memo.of_inputs("fitness", (finished, start), lambda: _fitness_points(finished, start))


def _fitness_points(finished: tuple[ExperimentRow, ...], start: float) -> tuple[FitnessPoint, ...]:
    best, points = None, []
    for index, row in enumerate(sorted(finished, key=lambda r: (r.updated_at, r.id)), start=1):
        if row.fitness is not None and not row.flagged:
            best = row.fitness if best is None else max(best, row.fitness)
        points.append(FitnessPoint(id=row.id, name=row.name, minutes=max(0.0, row.updated_at - start) / 60,
                                   index=index, fitness=row.fitness, stderr=row.stderr if row.stderr is not None else 0.0,
                                   best_so_far=best, outcome=row.outcome))
    return tuple(points)


_NUMBERS = re.compile(r"\d+(\.\d+)?")
# Outcomes that are no failure: "skipped" is the proxy gate's choice not to train (agents/proxy_gate.py),
# no verdict on the candidate; the yardstick section counts those.
NOT_FAILED = frozenset({"ok", "skipped"})


def failures(experiments: list[Experiment]) -> tuple[FailureGroup, ...]:
    """Finished experiments that failed (not ok, not skipped by the proxy gate), grouped by outcome and by their reason with
    numbers ignored (so "line 12: ..." and "line 40: ..." of the same problem count together)."""
    return _failure_groups(tuple(row_of(e) for e in experiments))


def _failure_groups(rows: tuple[ExperimentRow, ...]) -> tuple[FailureGroup, ...]:
    groups: dict[tuple[str, str], list[ExperimentRow]] = {}
    for row in rows:
        if row.finished and row.outcome not in NOT_FAILED:
            groups.setdefault((row.outcome, _NUMBERS.sub("#", row.reason)), []).append(row)
    found = [FailureGroup(outcome=key[0], reason=members[0].reason or "(no reason recorded)", count=len(members),
                          ids=tuple(r.id for r in members))
             for key, members in groups.items()]
    return tuple(sorted(found, key=lambda g: (-g.count, g.outcome, g.reason)))


def _seconds(exp: Experiment) -> tuple[float, float]:
    """(training, every other step) seconds an experiment took."""
    return exp.timings.get("train", 0.0), sum(v for k, v in exp.timings.items() if k != "train")


def spend(snapshot: RunSnapshot) -> SpendSummary:
    seconds = snapshot.memo.of_each("seconds", snapshot.experiments, _seconds)
    return SpendSummary(llm_usd=snapshot.spend.usd, llm_tokens=snapshot.spend.tokens, llm_calls=snapshot.spend.calls,
                        train_s=round(sum(s[0] for s in seconds), 1), steps_s=round(sum(s[1] for s in seconds), 1))


_AWAITING = Stage.AWAITING_REVIEW.value


@dataclass(frozen=True)
class _Standing:
    """What the summary takes from the experiments alone (not from the clock or the driver)."""

    done: int
    first_proposed: float | None
    last_written: float | None
    in_flight: tuple[str, ...]
    awaiting: tuple[ExperimentRow, ...]
    best: ExperimentRow | None
    baseline: ExperimentRow | None
    best_reference: ExperimentRow | None
    outcomes: tuple[tuple[str, int], ...]
    failures: tuple[FailureGroup, ...]


def _standing(snapshot: RunSnapshot) -> _Standing:
    rows, finished = experiment_rows(snapshot), _finished_proposals(snapshot)
    proposals = [r for r in rows if not r.reference]
    references = [r for r in rows if r.reference]
    baseline = references[0] if references else None
    best_reference = max((r for r in references[1:] if r.fitness is not None), key=lambda r: r.fitness, default=None)
    best = max((r for r in proposals if r.fitness is not None and not r.flagged), key=lambda r: r.fitness, default=None)
    failing = tuple(r for r in finished if r.outcome not in NOT_FAILED)
    return _Standing(
        done=len(finished), first_proposed=min((r.created_at for r in proposals), default=None),
        last_written=max((r.updated_at for r in rows), default=None),
        in_flight=tuple(r.id for r in rows if not r.finished and r.stage != _AWAITING),
        awaiting=tuple(r for r in rows if r.stage == _AWAITING),
        best=best, baseline=baseline, best_reference=best_reference,
        outcomes=tuple(Counter(r.outcome for r in finished).most_common()),
        failures=snapshot.memo.of_inputs("failures", failing, lambda: _failure_groups(failing)))


def progress(snapshot: RunSnapshot) -> RunProgress:
    standing = snapshot.memo.of_run("standing", lambda: _standing(snapshot))
    done, planned, first = standing.done, snapshot.config.experiments, standing.first_proposed
    last = snapshot.taken_at if standing.last_written is None else standing.last_written
    now = snapshot.taken_at if snapshot.driver else last
    elapsed = now - snapshot.started_at if snapshot.experiments else 0.0
    eta = None
    if snapshot.driver and first is not None and done:
        eta = (snapshot.taken_at - first) / done * max(0, planned - done)
    return RunProgress(done=done, planned=planned, in_flight=standing.in_flight, awaiting=standing.awaiting,
                       elapsed_s=max(0.0, elapsed), eta_s=eta)


def run_summary(snapshot: RunSnapshot) -> RunSummary:
    """Derived from the experiments once per version of them; only progress and state (the
    clock, the driver) are worked out on every call."""
    config = snapshot.config
    standing = snapshot.memo.of_run("standing", lambda: _standing(snapshot))
    run_progress = progress(snapshot)
    return RunSummary(
        name=snapshot.name, task=config.task, budget=config.budget,
        researcher=config.llm.model_for("researcher") if config.llm else "offline", review=config.review,
        state=state_of(snapshot, run_progress.done), driver=snapshot.driver, progress=run_progress,
        best=standing.best, baseline=standing.baseline, best_reference=standing.best_reference,
        outcomes=standing.outcomes, fitness=fitness_over_time(snapshot), failures=standing.failures,
        spend=snapshot.memo.of_run("spend", lambda: spend(snapshot)))


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

