"""The typed configuration of a discovery run (loaded from `archlab.toml` by `archlab.config`).

Defaults run offline on a laptop: the offline researcher, SQLite, embedded ChromaDB,
local embeddings, the CPU.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.answers import JudgeWeights
from agents.llm.config import LLMConfig
from sandbox.slots import DeviceSlot, check_specs, parse_slots, threads_per_slot

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    strategy: Literal["uct", "qd", "mixed", "pareto"] = "mixed"  # parent sampling; "mixed" alternates UCT and QD; "pareto": the quality-cost front
    references: Literal["all", "baseline"] = "all"      # which references seed a new archive (all are evaluated first)
    novelty_threshold: float = Field(0.92, ge=0.0, le=1.0)  # motivation cosine similarity above this is "too close"
    novelty_tries: int = Field(3, ge=1)                 # researcher re-proposals before the experiment fails
    repair_tries: int = Field(2, ge=0)                  # coder repairs after a failed check
    cascade_seeds: int = Field(1, ge=0)                 # extra seeds for a new best proposal above the baseline (agents/scoring.py)
    insights: int = Field(4, ge=0)                      # insights retrieved for each proposal
    judge: JudgeWeights | None = None                   # LLM runs: the judge's novelty/complexity weights; None = off


class Rung(BaseModel):
    """A rung of the ladder above the run's budget: a larger budget, more seeds."""
    model_config = ConfigDict(extra="forbid")

    budget: str                          # e.g. "gpu": longer training and a larger model
    seeds: int = Field(3, ge=1)          # seeds at this rung (the baseline runs as many)
    promote_fraction: float = Field(0.25, gt=0.0, le=1.0)  # share of the rung below that climbs here


class ProxyGate(BaseModel):
    """Skipping training by a zero-cost proxy (docs/yardstick.md): off until the run's own archive
    shows the proxy predicts trained fitness."""
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False                # true: gate proposals once the measured correlation justifies it
    proxy: Literal["grad_norm", "snip", "hidden_logdet", "effective_rank"] = "snip"  # the proxy that gates (higher: more promising)
    min_rho: float = Field(0.5, gt=0.0, le=1.0)  # the proxy's Spearman rho with trained fitness must reach this
    min_candidates: int = Field(20, ge=3)  # over at least this many trained candidates of the run
    skip_quantile: float = Field(0.25, gt=0.0, lt=1.0)  # a proposal scoring below this quantile of the run's scores is not trained


class YardstickConfig(BaseModel):
    """How candidates are judged (docs/yardstick.md). One task stays the default until the many-core
    tuning (bench/bench_yardstick.py) shows the suite ranks the references well across seeds."""
    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(default_factory=list)  # suite fitness over these tasks, e.g. ["mqar", "bytelm"]; empty: the run's task alone
    task_weights: dict[str, float] = Field(default_factory=dict)  # weight of each task's normalised score; missing: 1.0
    quality_weight: float = Field(1.0, ge=0.0)      # suite: weight of the tasks' mean score (0 baseline, 1 ceiling)
    efficiency_weight: float = Field(0.1, ge=0.0)   # suite: weight of the mean log2 speed-up over the baseline (0.1: twice as fast is worth a tenth of the gap to attention)
    ladder: list[Rung] = Field(default_factory=list)  # rungs above the run's budget, in order; empty: one rung
    proxy_gate: ProxyGate = Field(default_factory=ProxyGate)  # the [yardstick.proxy_gate] table: skip training by a proxy

    @model_validator(mode="after")
    def _consistent(self) -> "YardstickConfig":
        unknown = sorted(set(self.tasks) - {"mqar", "bytelm"})
        if unknown:
            raise ValueError(f"yardstick.tasks: unknown task(s) {unknown}; known: mqar, bytelm")
        stray = sorted(set(self.task_weights) - set(self.tasks))
        if stray:
            raise ValueError(f"yardstick.task_weights names {stray}, which are not in yardstick.tasks {self.tasks}")
        if self.tasks and self.ladder:  # every rung evaluates every task at its budget
            from evaluator.budgets import list_budgets  # imports torch: only when there is something to check
            known = set(list_budgets())
            missing = [f"{t}/{r.budget}" for r in self.ladder for t in self.tasks if (t, r.budget) not in known]
            if missing:
                raise ValueError(f"yardstick.ladder: every rung evaluates every task of yardstick.tasks, but there is "
                                 f"no budget for {', '.join(missing)} (task/budget); choose rung budgets that every "
                                 f"task has: {', '.join(_common_budgets(self.tasks, known))}")
        return self


def _common_budgets(tasks: list[str], known: set[tuple[str, str]]) -> list[str]:
    return sorted({b for _, b in known if all((t, b) in known for t in tasks)})


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None              # run name; default TASK-BUDGET-DATE (letters, digits, . _ -)
    runs_dir: Path = Path("runs")        # where run directories live (and the knowledge home, _knowledge/)
    task: str = "mqar"                   # what candidates are judged on: mqar or bytelm
    budget: str = "cpu"                  # per-evaluation budget: smoke (seconds), cpu (minutes on 2 cores) or gpu
    experiments: int = Field(30, ge=0)   # proposals to finish, not counting the seeding references
    workers: int = Field(2, ge=1)        # experiments in flight at once
    devices: list[str] = Field(default_factory=list)  # device slots: cpu, cuda:N, cuda:NxK (K at once on GPU N) or ["auto"]; empty: one "cpu" slot per worker
    compile: bool | Literal["auto"] | None = None  # torch.compile in the run's trainings: true, false or "auto"; unset: each budget's own setting (docs/gpu.md)
    stagger_starts: bool = False         # a GPU several slots share: its first evaluations start one after another, each when the one before it trains (docs/gpu.md)
    ray: str | None = None               # evaluate on Ray: "local" starts one here, else a cluster address
    ray_tries: int = Field(3, ge=1)      # Ray: tries of an evaluation that a lost node, worker or object store cut short
    ray_reconnect_s: float = Field(60.0, ge=5.0)  # Ray: how long the cluster may stay unreachable before the run stops (resumable)
    seed: int = 0                        # seeds parent sampling, the offline researcher and training
    review: bool = False                 # true: every candidate waits for `archlab review` before training
    data: Path | None = None             # bytelm: a user's corpus
    embedder: str = "local"              # "local" (packaged MiniLM) or a litellm embedding model
    search: SearchConfig = Field(default_factory=SearchConfig)  # the [search] table
    yardstick: YardstickConfig = Field(default_factory=YardstickConfig)  # the [yardstick] table: suite, ladder
    llm: LLMConfig | None = None         # None: the offline researcher

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is not None and not NAME_PATTERN.match(name):
            raise ValueError("run names use letters, digits, '.', '_' and '-' (at most 64 characters)")
        return name

    @field_validator("devices")
    @classmethod
    def _valid_devices(cls, devices: list[str]) -> list[str]:
        return check_specs(devices)

    @property
    def ray_device_kind(self) -> str:
        """On Ray each evaluation takes one GPU when `devices` name CUDA ones, else one CPU."""
        return "cuda" if any(device.startswith("cuda") for device in self.devices) else "cpu"

    @property
    def ray_gpu_sharing(self) -> int:
        """On Ray, `cuda:NxK` makes each evaluation take a K-th of a GPU (the largest K named)."""
        return max((slot.sharing for slot in self.slots if slot.device != "cpu"), default=1)

    @property
    def device_slots(self) -> list[str]:
        """The slot specs for the executor (`auto` is resolved by `archlab run` before this is read)."""
        return self.devices or ["cpu"] * self.workers

    @property
    def slots(self) -> list[DeviceSlot]:
        return parse_slots(self.device_slots)

    @property
    def threads_per_worker(self) -> int:
        """This machine's cores split between the evaluations that run at once (every slot, a shared
        GPU's included); on Ray a task holds one CPU of its node."""
        return 1 if self.ray else threads_per_slot(os.cpu_count() or 1, len(self.slots))
