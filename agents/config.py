"""The typed configuration of a discovery run (loaded from `archlab.toml` by `archlab.config`).

Defaults run offline on a laptop: the offline researcher, SQLite, embedded ChromaDB,
local embeddings, the CPU.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.answers import JudgeWeights
from agents.llm_config import LLMConfig

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["uct", "qd", "mixed"] = "mixed"   # parent sampling; "mixed" alternates UCT and quality-diversity
    references: Literal["all", "baseline"] = "all"      # which references seed a new archive (all are evaluated first)
    novelty_threshold: float = Field(0.92, ge=0.0, le=1.0)  # motivation cosine similarity above this is "too close"
    novelty_tries: int = Field(3, ge=1)                 # researcher re-proposals before the experiment fails
    repair_tries: int = Field(2, ge=0)                  # coder repairs after a failed check
    cascade_seeds: int = Field(1, ge=0)                 # extra seeds for a candidate that beats the best so far
    insights: int = Field(4, ge=0)                      # insights retrieved for each proposal
    judge: JudgeWeights | None = None                   # LLM runs: the judge's novelty/complexity weights; None = off


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None              # run name; default TASK-BUDGET-DATE (letters, digits, . _ -)
    runs_dir: Path = Path("runs")        # where run directories live (and the knowledge home, _knowledge/)
    task: str = "mqar"                   # what candidates are judged on: mqar or bytelm
    budget: str = "cpu"                  # per-evaluation budget: smoke (seconds), cpu (minutes on 2 cores) or gpu
    experiments: int = Field(30, ge=0)   # proposals to finish, not counting the seeding references
    workers: int = Field(2, ge=1)        # experiments in flight at once
    devices: list[str] = Field(default_factory=list)  # device slots; empty: one "cpu" slot per worker
    ray: str | None = None               # evaluate on Ray: "local" starts one here, else a cluster address
    seed: int = 0                        # seeds parent sampling, the offline researcher and training
    review: bool = False                 # true: every candidate waits for `archlab review` before training
    data: Path | None = None             # bytelm: a user's corpus
    embedder: str = "local"              # "local" (packaged MiniLM) or a litellm embedding model
    search: SearchConfig = Field(default_factory=SearchConfig)  # the [search] table
    llm: LLMConfig | None = None         # None: the offline researcher

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is not None and not NAME_PATTERN.match(name):
            raise ValueError("run names use letters, digits, '.', '_' and '-' (at most 64 characters)")
        return name

    @property
    def ray_device_kind(self) -> str:
        """On Ray each evaluation takes one GPU when `devices` name CUDA ones, else one CPU."""
        return "cuda" if any(device.startswith("cuda") for device in self.devices) else "cpu"

    @property
    def device_slots(self) -> list[str]:
        return self.devices or ["cpu"] * self.workers

    @property
    def threads_per_worker(self) -> int:
        """This machine's cores shared among the workers; on Ray a task holds one CPU of its node."""
        return 1 if self.ray else max(1, (os.cpu_count() or 1) // self.workers)
