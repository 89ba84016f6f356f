"""The experiments table: filter and sort rows by what a researcher asks of a run.

Bad filters raise TableQueryError with a message that names the choices, so a page or an API
client can be told what to change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from archlab.insights.records import ExperimentRow


class TableQueryError(ValueError):
    """A sort key or a filter value the table does not know; the message lists the choices."""


# column -> (value to sort by, largest first by default)
SORT_KEYS: dict[str, tuple[Callable[[ExperimentRow], Any], bool]] = {
    "id": (lambda r: r.id, False), "name": (lambda r: r.name.lower(), False),
    "proposer": (lambda r: r.proposer, False), "parent": (lambda r: r.parent_id, False),
    "stage": (lambda r: r.stage, False), "outcome": (lambda r: r.outcome, False),
    "fitness": (lambda r: r.fitness, True), "params": (lambda r: r.params, False),
    "tokens_per_s": (lambda r: r.tokens_per_s, True), "latency_ms": (lambda r: r.latency_ms, False),
    "llm_tokens": (lambda r: r.llm_tokens, True), "cost_usd": (lambda r: r.cost_usd, True),
}


@dataclass(frozen=True)
class TableQuery:
    sort: str = "id"
    descending: bool | None = None   # None: the column's natural order (largest first for fitness)
    outcome: str = ""                # comma-separated outcomes (status or stage), e.g. "ok,leaky"
    stage: str = ""
    proposer: str = ""
    text: str = ""                   # part of the id or the name
    min_fitness: float | None = None
    max_params: int | None = None
    references: bool = True
    limit: int | None = None         # at most this many rows (the first after sorting); None: all


def _choices(rows: list[ExperimentRow], field: str) -> list[str]:
    return sorted({getattr(r, field) for r in rows if getattr(r, field)})


def _wanted(value: str, rows: list[ExperimentRow], field: str) -> set[str]:
    wanted = {part.strip() for part in value.split(",") if part.strip()}
    known = set(_choices(rows, field)) | {"ok"}
    unknown = sorted(wanted - known) if field != "proposer" else []
    if unknown:
        raise TableQueryError(f"{field} {', '.join(unknown)} does not occur in this run; choose from: "
                              f"{', '.join(sorted(known))}")
    return wanted


def select(rows: list[ExperimentRow], query: TableQuery) -> list[ExperimentRow]:
    """Rows that pass every filter, sorted; rows without the sorted figure go last either way."""
    if query.sort not in SORT_KEYS:
        raise TableQueryError(f"cannot sort by {query.sort!r}; choose one of: {', '.join(SORT_KEYS)}")
    kept = rows if query.references else [r for r in rows if not r.reference]
    for field, value in (("outcome", query.outcome), ("stage", query.stage), ("proposer", query.proposer)):
        if value:
            wanted = _wanted(value, rows, field)
            kept = [r for r in kept if getattr(r, field) in wanted]
    if query.text:
        needle = query.text.lower()
        kept = [r for r in kept if needle in r.id.lower() or needle in r.name.lower()]
    if query.min_fitness is not None:
        kept = [r for r in kept if r.fitness is not None and r.fitness >= query.min_fitness]
    if query.max_params is not None:
        kept = [r for r in kept if r.params is not None and r.params <= query.max_params]
    key, natural = SORT_KEYS[query.sort]
    descending = natural if query.descending is None else query.descending
    known = [r for r in kept if key(r) is not None]
    return sorted(known, key=key, reverse=descending) + [r for r in kept if key(r) is None]


def choices(rows: list[ExperimentRow]) -> dict[str, list[str]]:
    """The values each filter can take in this run (for the filter form's menus)."""
    return {field: _choices(rows, field) for field in ("outcome", "stage", "proposer")}
