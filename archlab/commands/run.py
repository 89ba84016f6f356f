"""`archlab run` starts a discovery run; `archlab resume RUN` continues one after a stop or a crash."""
from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

from archlab.config import load_config
from archlab.errors import UsageError
from archlab.devices import check_data, check_slots, resolve_auto
from archlab.drive_run import drive
from archlab.rundir import CONFIG_FILE, find_run, load_run_config, prepare_run_dir, run_name, write_run_config
from archlab.runlock import hold_run
from sandbox.slots import AUTO


DEFAULT_SUITE = ["mqar", "bytelm"]  # issue 12's default suite: recall and language modelling


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="start a discovery run")
    run.add_argument("--config", type=Path, help="archlab.toml (default: ./archlab.toml if present)")
    run.add_argument("--task", help="mqar or bytelm")
    run.add_argument("--budget", help="smoke, cpu or gpu")
    run.add_argument("--experiments", type=int, help="number of proposals to finish")
    run.add_argument("--suite", action="store_true", default=None, help="judge on the default suite: "
                     "yardstick.tasks = mqar and bytelm at the run's budget (docs/yardstick.md)")
    mode = run.add_mutually_exclusive_group()
    mode.add_argument("--llm", metavar="MODEL", help="litellm model for every role, e.g. openai/gpt-4o-mini")
    mode.add_argument("--offline", action="store_true", help="the offline researcher (the default with no model)")
    run.add_argument("--api-base", help="an OpenAI-compatible server for --llm (vLLM, Ollama, llama.cpp)")
    run.add_argument("--workers", type=int, help="experiments in flight at once")
    run.add_argument("--devices", help="comma-separated device slots: cpu, cuda:N, cuda:NxK (K evaluations at once "
                     "on GPU N, e.g. cuda:0x4), or auto (every GPU, K from the budget) (default: cpu per worker)")
    run.add_argument("--compile", choices=["auto", "true", "false"], help="torch.compile in the run's trainings "
                     "(default: each budget's own setting; docs/gpu.md)")
    run.add_argument("--ray", metavar="ADDRESS", help="evaluate on Ray: 'local' starts one here, or a cluster "
                     "address such as 'auto' (needs the cluster extra: pip install 'archlab[cluster]')")
    run.add_argument("--review", action="store_true", default=None, help="wait for a person's decision on each candidate")
    run.add_argument("--name", help="run name (default: TASK-BUDGET-DATE)")
    run.add_argument("--runs-dir", type=Path, help="where run directories live (default: runs)")
    run.add_argument("--seed", type=int)
    run.add_argument("--data", type=Path, help="bytelm: a text file or folder to train on")
    run.set_defaults(handler=start)

    resume = subparsers.add_parser("resume", help="continue a stopped or crashed run")
    resume.add_argument("run", help="run directory or name")
    resume.add_argument("--runs-dir", type=Path, default=Path("runs"))
    resume.add_argument("--experiments", type=int, metavar="N", help="extend (or shorten) the run to N proposals "
                        "in all; N must be more than the proposals already finished")
    resume.set_defaults(handler=resume_run)


def start(args: argparse.Namespace) -> int:
    overrides = {
        "task": args.task, "budget": args.budget, "experiments": args.experiments, "workers": args.workers,
        "devices": args.devices.split(",") if args.devices else None, "ray": args.ray,
        "compile": {"true": True, "false": False}.get(args.compile, args.compile),
        "review": args.review, "name": args.name,
        "runs_dir": str(args.runs_dir) if args.runs_dir else None, "seed": args.seed,
        "data": str(args.data) if args.data else None, "yardstick.tasks": DEFAULT_SUITE if args.suite else None,
        "llm.models.default": args.llm, "llm.api_base": args.api_base,
    }
    config = load_config(args.config, overrides)
    if args.offline:
        config = config.model_copy(update={"llm": None})
    _validate(config)
    config = _resolve_devices(config)
    name = run_name(config)
    run_dir = prepare_run_dir(config, name)
    with hold_run(run_dir, name):
        write_run_config(config, name, run_dir)
        print(f"run {name} in {run_dir} ({'LLM: ' + config.llm.models['default'] if config.llm else 'offline researcher'})")
        return drive(config.model_copy(update={"name": name}), run_dir)


def resume_run(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    config = load_run_config(run_dir)
    with hold_run(run_dir, config.name or run_dir.name):
        if args.experiments is not None:
            config = _retarget(config, run_dir, args.experiments)
        print(f"resuming run {config.name} in {run_dir}")
        return drive(config, run_dir)


def _retarget(config, run_dir: Path, target: int):
    """`resume --experiments N`: N proposals in all, recorded in config.json (call while holding the run).
    Unfinished experiments always finish; N only decides how many new ones are started."""
    from archlab.rundir import open_for_reading
    from knowledge.archive import ARCHIVE_FILE

    proposals = []
    if (run_dir / ARCHIVE_FILE).is_file():  # else its first driver never started: nothing is done yet
        with open_for_reading(run_dir) as archive:
            proposals = [e for e in archive.experiments(run=config.name) if e.proposer != "reference"]
    done = sum(e.finished for e in proposals)
    if target <= done:
        raise UsageError(f"--experiments {target}: run {config.name} has already finished {done} proposals "
                         f"(planned {config.experiments}), so nothing would be added; give more than {done} to "
                         f"extend it, or leave --experiments out to finish what is in flight")
    if target != config.experiments:
        started = len(proposals)
        note = (f"; {started - target} more already started and will still finish" if started > target else "")
        print(f"run {config.name}: {config.experiments} -> {target} proposals ({done} finished{note})")
        config = config.model_copy(update={"experiments": target})
        staged = run_dir / f"{CONFIG_FILE}.new"
        staged.write_text(config.model_dump_json(indent=2))
        os.replace(staged, run_dir / CONFIG_FILE)  # a kill -9 leaves the old config or the new one, whole
    return config


def _validate(config) -> None:
    from evaluator.budgets import get_budget
    from evaluator.tasks import get_task

    try:
        get_task(config.task)
        get_budget(config.task, config.budget)
        for task in config.yardstick.tasks:  # a suite evaluates every task at the run's budget
            get_budget(task, config.budget)
    except (KeyError, ValueError) as error:
        raise UsageError(error.args[0] if error.args else str(error)) from error
    if config.data is not None:
        check_data(config.data)
    if config.ray is not None and config.devices == [AUTO]:
        raise UsageError("--devices auto packs this machine's GPUs; on Ray give cuda (a GPU per evaluation) "
                         "or cuda:0xK (a K-th of a GPU per evaluation)")
    if config.ray is not None and config.stagger_starts:
        raise UsageError("stagger_starts staggers this machine's shared GPU slots; on Ray, Ray places each "
                         "evaluation, so set stagger_starts = false (or leave it out) to run on Ray")
    if config.ray is None and config.devices != [AUTO]:  # on Ray, the cluster's nodes have the GPUs
        check_slots(config.devices)
    if config.ray is not None and importlib.util.find_spec("ray") is None:
        raise UsageError("evaluating on Ray needs it installed: pip install 'archlab[cluster]'")


def _resolve_devices(config):
    """`--devices auto` becomes the slots it stands for on this machine, which config.json records (a resume
    keeps them, and with them the threads per evaluation)."""
    if config.devices != [AUTO]:
        return config
    rungs = [config.budget, *(rung.budget for rung in config.yardstick.ladder)]
    try:
        devices, sharing = resolve_auto([(task, budget) for task in config.yardstick.tasks or [config.task]
                                         for budget in rungs], config.compile)
    except ValueError as error:  # a ladder rung's budget that does not exist
        raise UsageError(str(error)) from error
    print(f"--devices auto: {','.join(devices)} ({sharing.reason})")
    return config.model_copy(update={"devices": devices})
