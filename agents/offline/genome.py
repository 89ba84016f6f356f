"""The offline researcher's design space: a mixer described by a handful of enumerated genes.

Every gene is a closed set of choices, so the space can be enumerated, sampled uniformly,
mutated one gene at a time and hashed. A genome is pure data: `render.py` turns it into a
candidate file, `search.py` moves through the space.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Gene:
    """One axis of the design space: its enumerated choices, the default, and what it means."""

    name: str
    choices: tuple[Any, ...]
    doc: str


GENES: tuple[Gene, ...] = (
    Gene("feature_map", ("identity", "elu1", "relu", "silu", "softmax"),
         "map applied to q and k before the state update: identity, elu(x)+1, relu, silu, "
         "or a softmax over the head dimension"),
    Gene("key_norm", ("none", "l2"),
         "L2-normalise q and k per head (required by the delta rule so each write is a contraction)"),
    Gene("update", ("additive", "delta"),
         "how a token writes the state: additive (S += k v^T, linear attention) or the delta rule "
         "(S += beta k (v - S^T k)^T, overwrites what the key already stores)"),
    Gene("decay", ("none", "fixed", "scalar", "channel"),
         "forgetting of the state: none, a fixed per-head multi-scale decay (retention), a "
         "data-dependent scalar per head and token (Mamba-2 style), or data-dependent per key channel (GLA style)"),
    Gene("gate", ("none", "silu"),
         "output gate: none, or the output multiplied by silu(W_g x)"),
    Gene("conv", (0, 2, 3, 4),
         "kernel of a causal depthwise convolution (+silu) on q, k and v; 0 = off"),
    Gene("key_expand", (1, 2),
         "key (state-row) dimension as a multiple of the value head dimension"),
    Gene("head_mult", (0.5, 1.0, 2.0),
         "number of heads as a multiple of the task's n_heads (lowered until it divides d_model)"),
    Gene("out_norm", ("none", "rms"),
         "normalisation of each head's output before gating: none, or RMSNorm per head"),
    Gene("normalizer", ("none", "denominator"),
         "for the additive rule: none, or divide by q . sum(k) (classic linear attention; "
         "needs non-negative features)"),
    Gene("local_window", (0, 16, 32, 64),
         "sliding-window softmax attention branch mixed in by a learned per-head gate; 0 = off "
         "(linear in T: each query sees at most this many keys)"),
    Gene("chunk", (16, 32, 64),
         "chunk length of the chunked-parallel form (speed only; the function computed is the same)"),
)

GENE_BY_NAME: dict[str, Gene] = {gene.name: gene for gene in GENES}
NONNEGATIVE_FEATURE_MAPS = frozenset({"elu1", "relu", "softmax"})


class GenomeError(ValueError):
    """A genome that is not a point of the design space; the message says which gene to fix."""


@dataclass(frozen=True)
class Genome:
    """A point of the design space; field meanings are documented in `GENES`."""

    feature_map: str = "identity"
    key_norm: str = "none"
    update: str = "additive"
    decay: str = "none"
    gate: str = "none"
    conv: int = 0
    key_expand: int = 1
    head_mult: float = 1.0
    out_norm: str = "none"
    normalizer: str = "none"
    local_window: int = 0
    chunk: int = 64

    def __post_init__(self) -> None:
        for gene in GENES:
            _check_choice(gene, getattr(self, gene.name))
        problems = constraint_violations(self.to_dict())
        if problems:
            raise GenomeError("invalid genome: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Genome":
        """Build from a dict (e.g. `Experiment.genome`); unknown or missing genes are errors."""
        if not isinstance(data, dict):
            raise GenomeError(f"a genome must be a dict of genes, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [name for name in names if name not in data]
        if unknown:
            raise GenomeError(f"unknown gene(s) {unknown}; genes are {names}")
        if missing:
            raise GenomeError(f"missing gene(s) {missing}; every gene needs a value")
        values = {name: _coerce(GENE_BY_NAME[name], data[name]) for name in names}
        return cls(**values)

    def replace(self, **changes: Any) -> "Genome":
        """A copy with some genes changed (validated like any genome)."""
        return Genome.from_dict({**self.to_dict(), **changes})

    def genome_id(self) -> str:
        """Stable 12-hex-digit hash of the gene values; equal genomes share it across runs."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def differences(self, other: "Genome") -> dict[str, tuple[Any, Any]]:
        """Genes whose values differ: name -> (value in self, value in other)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {name: (mine[name], theirs[name]) for name in mine if mine[name] != theirs[name]}

    def describe(self) -> str:
        """One line a person can read, naming only the components that are switched on."""
        parts = ["delta rule" if self.update == "delta" else "additive (linear attention)"]
        if self.feature_map != "identity":
            parts.append(f"phi={self.feature_map}")
        if self.key_norm == "l2":
            parts.append("l2 q/k")
        parts.append({"none": "no decay", "fixed": "fixed multi-scale decay",
                      "scalar": "data-dependent decay per head",
                      "channel": "data-dependent decay per key channel"}[self.decay])
        if self.normalizer == "denominator":
            parts.append("denominator")
        if self.conv:
            parts.append(f"conv{self.conv}")
        if self.local_window:
            parts.append(f"window-{self.local_window} softmax branch")
        if self.out_norm == "rms":
            parts.append("head RMSNorm")
        if self.gate == "silu":
            parts.append("silu gate")
        parts.append(f"heads x{self.head_mult:g}, keys x{self.key_expand}, chunk {self.chunk}")
        return ", ".join(parts)


def constraint_violations(values: dict[str, Any]) -> list[str]:
    """Combinations that are refused, each with what to change. Pure: used by validation and repair."""
    problems = []
    if values["update"] == "delta" and values["key_norm"] != "l2":
        problems.append("update='delta' needs key_norm='l2' (an unnormalised key makes the "
                        "delta write expand the state and diverge)")
    if values["normalizer"] == "denominator" and values["update"] != "additive":
        problems.append("normalizer='denominator' only applies to update='additive'")
    if values["normalizer"] == "denominator" and values["feature_map"] not in NONNEGATIVE_FEATURE_MAPS:
        problems.append(f"normalizer='denominator' needs a non-negative feature_map "
                        f"({sorted(NONNEGATIVE_FEATURE_MAPS)}), got {values['feature_map']!r}")
    return problems


def repair(values: dict[str, Any], keep: str | None = None) -> dict[str, Any]:
    """Make a gene dict valid by adjusting the genes that depend on others.

    `keep` names a gene that must not be touched (the one a mutation just set); the
    dependents are changed instead. Returns a new dict; the input is not modified.
    """
    fixed = dict(values)
    if fixed["update"] == "delta" and fixed["key_norm"] != "l2":
        if keep == "key_norm":
            fixed["update"] = "additive"
        else:
            fixed["key_norm"] = "l2"
    if fixed["normalizer"] == "denominator":
        needs_change = (fixed["update"] != "additive"
                        or fixed["feature_map"] not in NONNEGATIVE_FEATURE_MAPS)
        if needs_change and keep == "normalizer":
            fixed["update"] = "additive"
            if fixed["feature_map"] not in NONNEGATIVE_FEATURE_MAPS:
                fixed["feature_map"] = "elu1"
        elif needs_change:
            fixed["normalizer"] = "none"
    return fixed


def design_space_size() -> int:
    """How many valid genomes there are (the product of the choices, less refused combinations)."""
    names = [gene.name for gene in GENES]
    return sum(1 for combo in itertools.product(*(gene.choices for gene in GENES))
               if not constraint_violations(dict(zip(names, combo))))


def _check_choice(gene: Gene, value: Any) -> None:
    allowed = gene.choices
    same_type = type(value) is type(allowed[0])
    if not same_type or value not in allowed:
        raise GenomeError(f"gene {gene.name!r} must be one of {list(allowed)}, got {value!r} "
                          f"({gene.doc})")


def _coerce(gene: Gene, value: Any) -> Any:
    """Accept JSON's loose numbers (an int where a float choice is expected, and vice versa)."""
    kind = type(gene.choices[0])
    if isinstance(value, bool) or not isinstance(value, (int, float)) or kind not in (int, float):
        return value
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is float:
        return float(value)
    return value
