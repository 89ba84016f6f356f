"""Conversion between the typed records and SQLite rows (JSON columns for dicts and lists)."""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from knowledge.descriptors import descriptors_from_metrics, selection_weight
from knowledge.records import Event, Experiment, ExperimentBrief, Insight, LLMCall, Stage

EXPERIMENT_JSON_FIELDS = ("reference_ids", "metrics", "fitness", "analysis", "genome", "timings", "provenance")
EXPERIMENT_FIELDS = tuple(Experiment.model_fields)
EXPERIMENT_COLUMNS = EXPERIMENT_FIELDS + (
    "fitness_value", "fitness_flagged", "log10_params", "complexity_exponent", "latency_ms",
    "selection_weight",
)
BRIEF_COLUMNS = ("id", "parent_id", "proposer", "stage", "status", "fitness_value",
                 "fitness_flagged", "structure_hash", "log10_params", "complexity_exponent",
                 "latency_ms", "selection_weight")

LLM_CALL_JSON_FIELDS = ("prompt", "meta")
LLM_CALL_FIELDS = tuple(LLMCall.model_fields)
EVENT_JSON_FIELDS = ("data",)
EVENT_FIELDS = tuple(Event.model_fields)
INSIGHT_JSON_FIELDS = ("metadata",)
INSIGHT_FIELDS = tuple(Insight.model_fields) + ("created_at",)


def canonical_json(value: Any) -> str | None:
    """How JSON fields are stored: sorted keys, so equal values are equal text (and can be queried)."""
    return None if value is None else json.dumps(value, sort_keys=True, allow_nan=True)


def _encode(data: dict[str, Any], json_fields: tuple[str, ...]) -> dict[str, Any]:
    for name in json_fields:
        data[name] = canonical_json(data[name])
    return data


def _decode(row: sqlite3.Row, fields: tuple[str, ...], json_fields: tuple[str, ...]) -> dict[str, Any]:
    data = {name: row[name] for name in fields}
    for name in json_fields:
        data[name] = json.loads(data[name]) if data[name] is not None else None
    return data


def experiment_to_row(exp: Experiment) -> dict[str, Any]:
    data = _encode(exp.model_dump(mode="json"), EXPERIMENT_JSON_FIELDS)
    found = descriptors_from_metrics(exp.metrics)
    data.update(
        fitness_value=exp.fitness.value if exp.fitness else None,
        fitness_flagged=int(bool(exp.fitness and exp.fitness.flagged)),
        log10_params=found.log10_params,
        complexity_exponent=found.complexity_exponent,
        latency_ms=found.latency_ms,
        selection_weight=selection_weight(exp.analysis),
    )
    return data


def experiment_from_row(row: sqlite3.Row) -> Experiment:
    return Experiment.model_validate(_decode(row, EXPERIMENT_FIELDS, EXPERIMENT_JSON_FIELDS))


_STAGES = {stage.value: stage for stage in Stage}


def briefs_from_rows(found: Iterable[tuple]) -> list[ExperimentBrief]:
    stages = _STAGES
    return [ExperimentBrief(exp_id, parent_id, proposer, stages[stage], status, fitness, flagged == 1,
                            structure_hash, log10_params, exponent, latency, weight)
            for (exp_id, parent_id, proposer, stage, status, fitness, flagged, structure_hash,
                 log10_params, exponent, latency, weight) in found]


def llm_call_to_row(call: LLMCall) -> dict[str, Any]:
    return _encode(call.model_dump(mode="json"), LLM_CALL_JSON_FIELDS)


def llm_call_from_row(row: sqlite3.Row) -> LLMCall:
    return LLMCall.model_validate(_decode(row, LLM_CALL_FIELDS, LLM_CALL_JSON_FIELDS))


def event_to_row(event: Event) -> dict[str, Any]:
    return _encode(event.model_dump(mode="json"), EVENT_JSON_FIELDS)


def event_from_row(row: sqlite3.Row) -> Event:
    return Event.model_validate(_decode(row, EVENT_FIELDS, EVENT_JSON_FIELDS))


def insight_to_row(insight: Insight, created_at: float) -> dict[str, Any]:
    data = _encode(insight.model_dump(mode="json"), INSIGHT_JSON_FIELDS)
    data["created_at"] = created_at
    return data


def insight_from_row(row: sqlite3.Row) -> Insight:
    data = _decode(row, INSIGHT_FIELDS, INSIGHT_JSON_FIELDS)
    data.pop("created_at")
    return Insight.model_validate(data)


def insert_sql(table: str, columns: tuple[str, ...], upsert_key: str | None = None,
               keep: tuple[str, ...] = ()) -> str:
    """An INSERT with named parameters; with `upsert_key`, an upsert that leaves `keep` columns alone."""
    sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
           f"VALUES ({', '.join(':' + c for c in columns)})")
    if upsert_key:
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c != upsert_key and c not in keep)
        sql += f" ON CONFLICT({upsert_key}) DO UPDATE SET {updates}"
    return sql
