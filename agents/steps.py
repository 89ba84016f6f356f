"""The steps of one experiment (DESIGN.md §3). Each is idempotent: it reads the archive, does
nothing if its output is already recorded, and records its output (or a failure with a reason)
before returning. A step never raises for a candidate's fault; it raises only to abandon work
when the run stops, so the step is re-run on resume.
"""
from __future__ import annotations

import time
from agents.candidate_checks import check_candidate
from agents.ladder import climb
from agents.lab import Lab
from agents.parents import choose_parent_and_references
from agents.provenance import provenance
from agents.scoring import score_experiment
from agents.context import Neighbour, RejectedMotivation
from agents.proxy_gate import decide
from evaluator.records import EvalResult, Status
from knowledge.novelty import MotivationNovelty, code_hash, structure_hash
from knowledge.records import Experiment, Stage


def fail(lab: Lab, exp_id: str, reason: str, status: str = "", **details) -> None:
    """Record a failure that ends this experiment; the run goes on."""
    lab.update(exp_id, stage=Stage.FAILED, reason=reason, **({"status": status} if status else {}))
    lab.log(exp_id, "failure", reason, status=status, **details)


def _add_timing(exp: Experiment, phase: str, seconds: float) -> dict[str, float]:
    timings = dict(exp.timings)
    timings[phase] = round(timings.get(phase, 0.0) + seconds, 3)
    return timings


def propose_step(lab: Lab, exp_id: str) -> None:
    exp = lab.archive.get_experiment(exp_id)
    if exp.motivation:
        return
    started = time.monotonic()
    parent, references = choose_parent_and_references(lab, exp)
    ideas = [ins.text for ins in lab.archive.insights(source="person")  # given in review for this experiment
             if ins.run == lab.run and ins.experiment_id == exp_id]
    researcher = lab.team.researcher
    novelty = MotivationNovelty(lab.store, threshold=lab.config.search.novelty_threshold)
    rejected: list[RejectedMotivation] = []
    tries = lab.config.search.novelty_tries
    for _ in range(tries):
        lab.check_stop()
        draft = researcher.propose(lab, exp, parent, references, rejected, ideas)
        if researcher.uses_novelty_gate:
            verdict = novelty.check(draft.motivation, exclude=[exp_id])
            if not verdict.novel:
                rejected.append(RejectedMotivation(motivation=draft.motivation, name=draft.name, neighbours=[
                    Neighbour(name=n.name, motivation=n.motivation, similarity=n.score) for n in verdict.nearest]))
                lab.log(exp_id, "novelty", f"too close to archived motivations: {draft.name}")
                continue
        with lab.claims:
            claimed = lab.archive.find_by_genome(draft.genome, lab.run) if draft.genome is not None else []
            if any(e.id != exp_id for e in claimed):
                lab.log(exp_id, "novelty", f"genome just proposed by an experiment in flight: {draft.name}")
                continue  # the next draft sees it in the archive
            lab.update(
                exp_id, name=draft.name, motivation=draft.motivation, plan=draft.plan, proposer=draft.proposer,
                genome=draft.genome, parent_id=draft.parent_id or parent.id,
                reference_ids=draft.reference_ids if draft.reference_ids is not None else [r.id for r in references],
                timings=_add_timing(exp, "propose", time.monotonic() - started),
            )
        lab.log(exp_id, "stage", f"proposed {draft.name}")
        return
    fail(lab, exp_id, f"no new proposal in {tries} tries: {len(rejected)} too close to archived motivations, "
                      f"{tries - len(rejected)} repeating a genome proposed meanwhile")


def code_step(lab: Lab, exp_id: str) -> None:
    exp = lab.archive.get_experiment(exp_id)
    if exp.stage is not Stage.PROPOSED:
        return
    started = time.monotonic()
    parent = lab.archive.get_experiment(exp.parent_id) if exp.parent_id else None
    coder = lab.team.coder
    code = coder.write(lab, exp, parent)
    tries = lab.config.search.repair_tries
    for attempt in range(tries + 1):
        lab.check_stop()
        rejection = check_candidate(lab, exp_id, code, smoke=coder.needs_smoke_checks)
        if rejection is None:
            break
        lab.log(exp_id, "check", f"attempt {attempt + 1}: {rejection.status}: {rejection.failure.reason}")
        repaired = coder.repair(lab, exp, code, rejection.failure, attempt + 1) if attempt < tries else None
        if repaired is None:
            fail(lab, exp_id, f"candidate failed its checks: {rejection.failure.reason}", status=rejection.status)
            return
        code = repaired
    hashes = {"code_hash": code_hash(code), "structure_hash": structure_hash(code)}
    with lab.claims:
        duplicate = [d for d in lab.archive.find_by_code_hash(hashes["code_hash"]) if d.id != exp_id and d.run == lab.run]
        if not duplicate:
            (lab.experiment_dir(exp_id) / "candidate.py").write_text(code)
            exp = lab.archive.get_experiment(exp_id)
            lab.update(exp_id, code=code, stage=Stage.CODED, **hashes,
                       timings=_add_timing(exp, "code", time.monotonic() - started))
    if duplicate:
        fail(lab, exp_id, f"duplicate: the code is the same as {duplicate[0].id} ({duplicate[0].name}) up to formatting")
        return
    lab.log(exp_id, "stage", "coded")


def run_evaluation(lab: Lab, exp: Experiment, seed: int, budget: str | None = None,
                   task: str | None = None, gate: tuple[str, float] | None = None) -> EvalResult:
    """One sandboxed evaluation on a free device slot; abandoned (not recorded) if the run stops.
    A reference is evaluated by name, so the evaluator knows which one is the quadratic ceiling.
    `budget`: a rung of the ladder (agents.ladder), `task`: one of a suite's; None: the run's;
    `gate`: the proxy gate's (proxy, threshold) (agents.proxy_gate). The run's `compile` setting applies here,
    to trainings, and not to a new candidate's smoke checks (agents.candidate_checks)."""
    path = lab.experiment_dir(exp.id) / "candidate.py"
    path.write_text(exp.code)  # always from the archive: a kill -9 may have left a half-written file
    target = exp.name if exp.proposer == "reference" else path
    folder = "eval-" + "".join(f"{part}-" for part in (task, budget) if part) + f"seed{seed}"
    return lab.evaluate(target, budget or lab.config.budget, seed, lab.experiment_dir(exp.id) / folder, exp.id, task,
                        gate, compile=lab.config.compile)


def evaluate_step(lab: Lab, exp_id: str) -> None:
    exp = lab.archive.get_experiment(exp_id)
    if exp.stage is not Stage.APPROVED:
        return
    started = time.monotonic()
    gated = exp.proposer != "reference" and lab.config.yardstick.proxy_gate.enabled
    decision = decide(lab.config.yardstick.proxy_gate, lab.archive.experiments(run=lab.run)) if gated else None
    first_task = (lab.config.yardstick.tasks or [None])[0]

    def evaluate_seed(seed: int, task: str | None = None) -> EvalResult:  # only the first evaluation is gated
        gate = decision.gate if decision and seed == lab.config.seed and task == first_task else None
        return run_evaluation(lab, exp, seed, task=task, gate=gate)
    results = score_experiment(lab, exp, evaluate_seed)
    first = results.results[0]
    if decision is not None:
        results.metrics["proxy_gate"] = decision.record()
        if first.status is Status.SKIPPED:
            first.reason = decision.skip_reason(first.metrics["proxies"][decision.proxy])
        lab.log(exp_id, "proxy_gate", first.reason if first.status is Status.SKIPPED else decision.why)
    exp = lab.archive.get_experiment(exp_id)
    timings = _add_timing(exp, "evaluate", time.monotonic() - started)
    timings["train"] = round(timings.get("train", 0.0) + sum(r.timings.get("train", 0.0) for r in results.results), 3)
    seeds = [entry["seed"] for entry in results.metrics["seeds"]]
    ran_with = provenance(lab.config.task, lab.config.budget, seeds, lab.config.data, lab.config.threads_per_worker)
    lab.update(
        exp_id, stage=Stage.EVALUATED, status=first.status.value, reason=first.reason,
        metrics=results.metrics, fitness=results.fitness, timings=timings, provenance=ran_with,
    )
    fitness = f", fitness {results.fitness.value:+.4f} ± {results.fitness.stderr:.4f}" if results.fitness else ""
    lab.log(exp_id, "stage", f"evaluated: {first.status.value}{fitness}")


def analyze_step(lab: Lab, exp_id: str) -> None:
    exp = lab.archive.get_experiment(exp_id)
    if exp.stage is not Stage.EVALUATED:
        return
    climb(lab, exp_id, run_evaluation)  # idempotent: rungs already recorded are not run again
    exp = lab.archive.get_experiment(exp_id)
    started = time.monotonic()
    parent = lab.archive.get_experiment(exp.parent_id) if exp.parent_id else None
    siblings = [e for e in lab.archive.experiments(run=lab.run)
                if e.parent_id == exp.parent_id and e.id != exp.id and e.stage in (Stage.EVALUATED, Stage.ANALYZED)]
    analyst = lab.team.reference_analyst if exp.proposer == "reference" else lab.team.analyst
    analysis = analyst.analyze(lab, exp, parent, siblings, lab.baseline())
    lab.update(exp_id, analysis=analysis, stage=Stage.ANALYZED,
               timings=_add_timing(exp, "analyze", time.monotonic() - started))
    lab.log(exp_id, "stage", "analyzed")
