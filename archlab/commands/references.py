"""`archlab references`: the hand-written candidates shipped with the project, and which of them
each task measures against (its baseline, fitness zero) and takes as its quality ceiling."""
from __future__ import annotations

import argparse

from archlab.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("references", help="list the reference candidates, with each task's baseline "
                                   "and ceiling")
    parser.add_argument("--family", default="mixer")
    parser.set_defaults(handler=run)


def task_roles() -> dict[str, list[str]]:
    """Reference name -> its roles, e.g. ["baseline of bytelm, mqar"], from the task registry."""
    from evaluator.tasks import get_task, list_tasks

    by_role: dict[tuple[str, str], list[str]] = {}
    for name in list_tasks():
        task = get_task(name)
        for role, reference in (("baseline", task.baseline), ("ceiling", task.ceiling)):
            by_role.setdefault((reference, role), []).append(name)
    roles: dict[str, list[str]] = {}
    for (reference, role), tasks in sorted(by_role.items()):
        roles.setdefault(reference, []).append(f"{role} of {', '.join(tasks)}")
    return roles


def run(args: argparse.Namespace) -> int:
    from evaluator.references import list_references

    try:
        references = list_references(args.family)
    except KeyError as error:
        raise UsageError(f"--family {args.family}: {error.args[0]}") from error
    roles = task_roles()
    width = max(len(r.name) for r in references)
    for ref in references:
        marks = roles.get(ref.name, []) + (["quadratic"] if ref.quadratic else [])
        marker = f"  [{'; '.join(marks)}]" if marks else ""
        print(f"{ref.name:<{width}}  {ref.path}{marker}\n{'':<{width}}  {ref.summary}")
    print("\nbaseline: a task's fitness is measured relative to it (fitness 0); ceiling: the quality bar above which "
          "a result is flagged as implausible")
    return 0
