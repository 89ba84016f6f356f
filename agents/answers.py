"""What the JSON roles (researcher, analyst, judge) answer: typed models validated from their
JSON, and pure functions over them. The coder answers in plain text (agents.llm.code_blocks).

Models ignore extra fields and coerce harmless variations (a list given as one string,
a score as 7.0) so that only real mistakes cost a retry.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_MAX_CHARS = 48


class LenientAnswer(BaseModel):
    """Extra fields a model adds (confidence, notes) are dropped, not an error."""

    model_config = ConfigDict(extra="ignore")


class Proposal(LenientAnswer):
    name: str
    motivation: str = Field(min_length=1)
    plan: str = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        """A short slug: it names files and appears in tables."""
        slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:NAME_MAX_CHARS].strip("-")
        if not slug:
            raise ValueError("name must contain letters or digits, e.g. 'gated-decay-conv'")
        return slug


class Analysis(LenientAnswer):
    summary: str = Field(min_length=1)
    tried: str = ""
    outcome_vs_expected: str = ""
    why: str = ""
    lessons: list[str] = Field(default_factory=list)
    suggested_next: list[str] = Field(default_factory=list)

    @field_validator("lessons", "suggested_next", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class JudgeScores(LenientAnswer):
    novelty: int = Field(ge=1, le=10)
    complexity: int = Field(ge=1, le=10)
    rationale: str = ""

    @field_validator("novelty", "complexity", mode="before")
    @classmethod
    def _round_scores(cls, value: Any) -> Any:
        return round(value) if isinstance(value, float) else value


class JudgeWeights(BaseModel):
    """How much the judge's scores move selection; zeros (the default) leave it untouched."""

    model_config = ConfigDict(extra="forbid")

    novelty: float = Field(default=0.0, ge=0.0, le=0.5)     # how much a novel idea raises its selection weight
    complexity: float = Field(default=0.0, ge=0.0, le=0.5)  # how much a complicated one lowers it


def judge_weight(scores: JudgeScores, weights: JudgeWeights) -> float:
    """A selection multiplier in [1 - n - c, 1 + n + c]: novel ideas up, complicated ones down.

    Scores are centred on the middle of the 1..10 scale so that an average candidate keeps
    weight 1; the bounds on the weights keep the multiplier positive.
    """
    centred_novelty = (scores.novelty - 5.5) / 4.5
    centred_complexity = (scores.complexity - 5.5) / 4.5
    return 1.0 + weights.novelty * centred_novelty - weights.complexity * centred_complexity
