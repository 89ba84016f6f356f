"""`archlab replay RUN EXP` re-evaluates one archived experiment and says whether it reproduces;
`archlab replay RUN --as NEW` re-runs a whole run with every LLM answer and review decision
served from its archive, and reports where the new run diverged."""
from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from archlab.errors import UsageError
from archlab.rundir import find_run, load_run_config, open_for_reading, open_for_writing


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="re-evaluate an archived experiment, or re-run a run from its record")
    parser.add_argument("run", help="run directory or name")
    parser.add_argument("experiment", nargs="?", help="experiment id to re-evaluate, e.g. e0007")
    parser.add_argument("--as", dest="as_name", metavar="NEW", help="re-run the whole run as a new run NEW, "
                        "LLM answers and review decisions served from the archive (no network, no API key)")
    parser.add_argument("--seeds", type=int, metavar="N", help="evaluate N seeds: the recorded ones, then the "
                        "next (default: as many as were recorded)")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the recorded device)")
    parser.add_argument("--budget", help="another budget, e.g. cpu for a smoke run: does it hold at a larger scale?")
    parser.add_argument("--allow-data-mismatch", action="store_true",
                        help="replay although the data's hash is not the recorded one")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    per_experiment = [flag for flag, value in (("--seeds", args.seeds), ("--device", args.device),
                                               ("--budget", args.budget)) if value is not None]
    if args.allow_data_mismatch:
        per_experiment.append("--allow-data-mismatch")
    if (args.experiment is None) == (args.as_name is None):
        raise UsageError(f"give an experiment to re-evaluate (`archlab replay {args.run} e0007`) or a new run name "
                         f"to re-run the whole run into (`archlab replay {args.run} --as NEW`), not both")
    run_dir = find_run(args.run, args.runs_dir)
    if args.as_name is not None:
        if per_experiment:
            raise UsageError(f"{', '.join(per_experiment)} go with an experiment (`archlab replay RUN EXP`); a whole "
                             "run is replayed with its own settings")
        from archlab.replay_run import replay_run

        return replay_run(run_dir, args.as_name)
    return _replay_experiment(args, run_dir)


def _replay_experiment(args: argparse.Namespace, run_dir: Path) -> int:
    from agents.scoring import relative_fitness, seed_metrics
    from archlab.devices import check_device
    from archlab.replay_experiment import candidate_target, compare, evaluate_seeds, make_plan, render
    from evaluator.budgets import get_budget
    from evaluator.tasks import get_task
    from knowledge.archive import ExperimentNotFoundError

    config = load_run_config(run_dir)
    with open_for_reading(run_dir) as archive:
        try:
            exp = archive.get_experiment(args.experiment)
        except ExperimentNotFoundError as error:
            raise UsageError(f"{error} of run {config.name}; `archlab ls {run_dir}` lists them") from error
        baseline_name = get_task(config.task).baseline
        baseline = next((e for e in archive.experiments(run=config.name)
                         if e.proposer == "reference" and e.name == baseline_name), None)
    if args.budget is not None:
        try:
            get_budget(config.task, args.budget)
        except (KeyError, ValueError) as error:
            raise UsageError(f"--budget {args.budget}: {error.args[0] if error.args else error}") from error
    plan = make_plan(exp, config, args.seeds, args.device, args.budget)
    check_device(plan.device, "--device" if args.device else "the recorded device (choose another with --device)")
    if plan.inconsistencies:
        raise UsageError(f"the archive's record of {exp.id} contradicts itself, so it was edited or damaged: "
                         f"{'; '.join(plan.inconsistencies)}; a replay cannot tell which figure to trust "
                         "(restore the archive from a copy)")
    if plan.data_mismatches and not args.allow_data_mismatch:
        raise UsageError(f"refusing to replay {exp.id}: its data is not the data it was evaluated on: "
                         f"{'; '.join(plan.data_mismatches)}. Figures on other data answer another question; "
                         "--allow-data-mismatch replays anyway")
    out_dir = _out_dir(run_dir, exp.id)
    target, note = candidate_target(exp, out_dir)
    if note:
        plan.differences.append(note)
    results = evaluate_seeds(target, plan, plan.budget, out_dir, "candidate")
    own = [r.metrics for r in results if r.ok]
    is_baseline = exp.proposer == "reference" and exp.name == baseline_name
    if is_baseline:
        base = own
    elif plan.same_budget:
        base = seed_metrics(baseline) if baseline is not None else []
    else:
        base = [r.metrics for r in evaluate_seeds(baseline_name, plan, plan.budget, out_dir, "baseline") if r.ok]
    fitness = relative_fitness(config.task, own, base, None) if own and base else None
    outcome = compare(plan, results, fitness)
    print(render(plan, outcome))
    print(f"evaluations: {out_dir}")
    _record(run_dir, config.name, plan, outcome)
    return 0 if outcome.reproduced else 1


def _out_dir(run_dir: Path, exp_id: str) -> Path:
    """Beside the experiment's own files, never over them; a temporary folder on read-only storage."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        path = run_dir / "experiments" / exp_id / "replays" / stamp
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix=f"archlab-replay-{exp_id}-"))


def _record(run_dir: Path, run: str, plan, outcome) -> None:
    from archlab.replay_experiment import event_data
    from knowledge.records import Event

    try:
        with open_for_writing(run_dir, "a replay") as archive:
            archive.log_event(Event(run=run, kind="replay", message=f"replay of {plan.exp.id}: {outcome.verdict}",
                                    experiment_id=plan.exp.id, data=event_data(plan, outcome)))
    except (UsageError, sqlite3.OperationalError) as error:
        print(f"could not record this replay in the archive ({error}); the figures above are its only record")
        return
    print(f"recorded as a 'replay' event of {plan.exp.id} (the original figures are untouched)")
