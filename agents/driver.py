"""Runs a discovery campaign: seeds the archive with references, evaluates the baseline first,
then keeps `workers` experiments in flight until the target number of proposals is finished.

Each experiment is one LangGraph thread (thread id = experiment id) checkpointed in SQLite, so
`resume` continues every unfinished experiment where it stopped. The driver holds no state of
its own that is not in the archive or the checkpointer.
"""
from __future__ import annotations

import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Callable

from langgraph.types import Command

from agents.lab import Lab
from agents.review import pending_decision
from agents.steps import fail
from agents.stopping import StopRequested
from agents.llm.errors import BudgetExhausted
from agents.offline.search import reference_genomes
from evaluator.references import get_reference
from knowledge.novelty import code_hash, structure_hash
from knowledge.records import Experiment, Stage
from sandbox.ray_faults import EvaluationLost

POLL_SECONDS = 1.0


class BaselineFailed(Exception):
    """The task's baseline did not evaluate cleanly here: fitness would be meaningless."""


@dataclass
class Progress:
    done: int
    target: int
    in_flight: list[str]
    awaiting_review: list[str]
    best: Experiment | None
    spend_usd: float
    calls: int
    eta_s: float | None
    message: str = ""
    stopped: str = ""   # why the run stopped early, if it did


def graph_input(lab: Lab, graph, exp_id: str, config: dict) -> Command | dict | None:
    """What an experiment's graph is invoked with: a person's pending decision, nothing (go on
    from its checkpoint, re-running the node a crash cut short), or a fresh start."""
    decision = pending_decision(lab, exp_id)
    if decision is not None:
        return Command(resume=decision)
    if graph.get_state(config).next:
        return None
    return {"experiment_id": exp_id}


@dataclass
class Driver:
    lab: Lab
    graph: object
    on_progress: Callable[[Progress], None] = lambda progress: None
    _started: float = field(default_factory=time.monotonic)
    _done_at_start: int | None = None
    _stopped: str = ""

    # ---- seeding -------------------------------------------------------------------------
    def seed_references(self) -> None:
        """Add the references to a new archive (idempotent: each is added once, by name)."""
        lab = self.lab
        names = [lab.team.task_baseline]
        if lab.config.search.references == "all":
            from evaluator.references import list_references
            names += [r.name for r in list_references("mixer") if r.name != lab.team.task_baseline]
        present = {e.name for e in lab.archive.experiments(run=lab.run) if e.proposer == "reference"}
        genomes = reference_genomes()
        for name in names:
            if name in present:
                continue
            reference = get_reference(name)
            code = reference.path.read_text()
            genome = genomes.get(name)
            lab.store.index_experiment(lab.archive.add_experiment(Experiment(
                id=lab.archive.next_experiment_id(lab.run), run=lab.run, name=name, proposer="reference",
                motivation=reference.summary, plan="hand-written reference", code=code,
                code_hash=code_hash(code), structure_hash=structure_hash(code), stage=Stage.APPROVED,
                genome=genome.to_dict() if genome else None,
            )))

    # ---- the loop --------------------------------------------------------------------------
    def run(self) -> Progress:
        self.seed_references()
        baseline = self.lab.baseline()
        self._drive(only={baseline.id})
        baseline = self.lab.baseline()
        if not self.lab.stop.is_set() and not baseline.finished:
            raise BaselineFailed(f"the baseline {baseline.name} did not finish ({baseline.stage.value})")
        if baseline.finished and baseline.status != "ok":
            raise BaselineFailed(f"the baseline {baseline.name} failed here: {baseline.status}: {baseline.reason}")
        references = {e.id for e in self.lab.archive.experiments(run=self.lab.run) if e.proposer == "reference"}
        if self.lab.config.yardstick.tasks:  # a suite is scaled by the ceiling: measure it before anything else
            self._drive(only={e.id for e in self.lab.archive.experiments(run=self.lab.run)
                              if e.proposer == "reference" and e.name == self.lab.team.task_ceiling})
        self._drive(only=references)  # the whole seed archive is known before the first proposal
        self._started, self._done_at_start = time.monotonic(), None  # the ETA counts proposals only
        self._drive(only=None)
        lost_link = getattr(self.lab.executor, "lost_connection", "")  # a Ray cluster that stayed unreachable
        self._stopped = self._stopped or lost_link
        return self.progress("stopped" if self._stopped else "finished")

    def _drive(self, only: set[str] | None) -> None:
        lab, futures = self.lab, {}
        pool = ThreadPoolExecutor(max_workers=lab.executor.capacity, thread_name_prefix="experiment")
        try:
            while not lab.stop.is_set():
                room = lab.executor.capacity - len(futures)
                for exp_id in self._runnable(only, set(futures.values()), room):
                    futures[pool.submit(self._advance, exp_id)] = exp_id
                if not futures:
                    if not self._awaiting_review(only):
                        break
                    time.sleep(POLL_SECONDS)  # a person decides in another terminal: poll the archive
                    continue
                done, _ = wait(futures, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    exp_id = futures.pop(future)
                    self.on_progress(self.progress(self._last_message(exp_id)))
        except KeyboardInterrupt:
            lab.stop.set()
            self._stopped = "interrupted: `archlab resume` continues where it stopped"
            raise
        finally:
            pool.shutdown(wait=True)

    def _runnable(self, only: set[str] | None, in_flight: set[str], room: int) -> list[str]:
        lab = self.lab
        if room <= 0:
            return []
        experiments = lab.archive.experiments(run=lab.run)
        chosen = [e.id for e in experiments
                  if not e.finished and e.id not in in_flight and (only is None or e.id in only)
                  and (e.stage is not Stage.AWAITING_REVIEW or pending_decision(lab, e.id) is not None)][:room]
        if only is None:
            proposals = sum(1 for e in experiments if e.proposer != "reference")
            while len(chosen) < room and proposals < lab.config.experiments:
                exp_id = lab.archive.next_experiment_id(lab.run)
                lab.archive.add_experiment(Experiment(id=exp_id, run=lab.run))
                chosen.append(exp_id)
                proposals += 1
        return chosen

    def _advance(self, exp_id: str) -> None:
        """Run one experiment's graph until it finishes, waits for review, or the run stops."""
        lab = self.lab
        config = {"configurable": {"thread_id": exp_id}, "recursion_limit": 64}
        before = lab.archive.get_experiment(exp_id).stage
        try:
            self.graph.invoke(graph_input(lab, self.graph, exp_id, config), config)
        except StopRequested:
            return
        except BudgetExhausted as error:
            self._stopped = f"LLM budget exhausted: {error}"
            lab.log(exp_id, "budget", self._stopped)
            lab.stop.set()
        except EvaluationLost as lost:  # the cluster lost it on every try: that is all there is to record
            fail(lab, exp_id, lost.reason, status=lost.status)
            return
        except Exception as error:  # a bug: record it, the run goes on
            fail(lab, exp_id, f"internal error: {type(error).__name__}: {error}", traceback=traceback.format_exc()[-4000:])
            return
        stuck = lab.archive.get_experiment(exp_id)
        if stuck.stage is before and not stuck.finished and stuck.stage is not Stage.AWAITING_REVIEW \
                and not lab.stop.is_set():  # it would be handed to the graph again, forever
            fail(lab, exp_id, f"internal error: the graph ended at stage {before.value} without progress")

    # ---- review ---------------------------------------------------------------------------
    def _awaiting_review(self, only: set[str] | None) -> bool:
        return any(e.stage is Stage.AWAITING_REVIEW and (only is None or e.id in only)
                   for e in self.lab.archive.experiments(run=self.lab.run))

    # ---- progress -------------------------------------------------------------------------
    def _last_message(self, exp_id: str) -> str:
        events = self.lab.archive.events(experiment_id=exp_id)
        return f"{exp_id} {events[-1].message}" if events else exp_id

    def progress(self, message: str = "") -> Progress:
        lab = self.lab
        experiments = lab.archive.experiments(run=lab.run)
        proposals = [e for e in experiments if e.proposer != "reference"]
        done = sum(1 for e in proposals if e.finished)
        if self._done_at_start is None:
            self._done_at_start = done
        scored = [e for e in experiments if e.fitness is not None and e.proposer != "reference"]
        best = max(scored, key=lambda e: e.fitness.value, default=None)
        calls, _tokens, usd = lab.archive.spend(lab.run)
        finished_here = done - self._done_at_start
        remaining = max(0, lab.config.experiments - done)
        eta = (time.monotonic() - self._started) / finished_here * remaining if finished_here else None
        return Progress(
            done=done, target=lab.config.experiments,
            in_flight=[e.id for e in experiments if not e.finished and e.stage is not Stage.AWAITING_REVIEW],
            awaiting_review=[e.id for e in experiments if e.stage is Stage.AWAITING_REVIEW],
            best=best, spend_usd=usd, calls=calls, eta_s=eta, message=message, stopped=self._stopped,
        )
