"""The registry of tasks: candidates are judged by name (`mqar`, `bytelm`)."""
from __future__ import annotations

from evaluator.tasks.base import IGNORE_INDEX, Batch, Task, TaskData
from evaluator.tasks.bytelm import ByteLMConfig, ByteLMTask
from evaluator.tasks.mqar import MQARConfig, MQARTask

_TASKS: dict[str, type] = {"mqar": MQARTask, "bytelm": ByteLMTask}


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]()
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())}") from None


__all__ = ["IGNORE_INDEX", "Batch", "ByteLMConfig", "MQARConfig", "Task", "TaskData", "get_task", "list_tasks"]
