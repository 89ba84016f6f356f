"""Render a genome to a standalone candidate file (family `mixer`) from code templates.

The templates under `templates/` hold the code; only the paths the genome selects are
emitted, so a generated file reads like a hand-written one and can be diffed against its
parent's. Rendering is deterministic: the same genome always gives the same text.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from agents.offline.genome import Genome

TEMPLATES_DIR = Path(__file__).with_name("templates")
NAME_MAX_CHARS = 48  # the archive's limit on proposal names (agents/answers.py)
_DECAY_NAME = {"none": "", "fixed": "fixed-decay", "scalar": "head-decay", "channel": "channel-decay"}


def candidate_name(genome: Genome) -> str:
    """A short unique slug: the switched-on components, most telling first, as many as fit in
    NAME_MAX_CHARS, then the genome id's prefix (which alone keeps names unique)."""
    parts = ["delta" if genome.update == "delta" else "linear"]
    if genome.decay != "none":
        parts.append(_DECAY_NAME[genome.decay])
    if genome.conv:
        parts.append(f"conv{genome.conv}")
    if genome.local_window:
        parts.append(f"window{genome.local_window}")
    if genome.feature_map != "identity":
        parts.append(genome.feature_map)
    if genome.gate == "silu":
        parts.append("gated")
    if genome.key_norm == "l2":
        parts.append("l2")
    if genome.out_norm == "rms":
        parts.append("rms")
    if genome.normalizer == "denominator":
        parts.append("normalised")
    suffix = genome.genome_id()[:6]
    kept = []
    for part in parts:
        if len("-".join(kept + [part, suffix])) > NAME_MAX_CHARS:
            break
        kept.append(part)
    return "-".join(kept + [suffix])


def render_candidate(genome: Genome, name: str | None = None) -> str:
    """The candidate file's source for `genome`; `name` appears in its docstring."""
    template = _environment().get_template("mixer.py.j2")
    source = template.render(
        g=genome,
        name=name or candidate_name(genome),
        description=genome.describe(),
        summary=_summary(genome),
        genome_id=genome.genome_id(),
        decay_kind={"none": "none", "fixed": "head", "scalar": "head", "channel": "channel"}[genome.decay],
    )
    return _tidy(source)


def _summary(genome: Genome) -> str:
    update = ("A delta-rule state (each write replaces what its key stored)" if genome.update == "delta"
              else "An additive matrix state (linear attention)")
    window = (f", mixed per head with a sliding-window softmax branch of {genome.local_window} tokens"
              if genome.local_window else "")
    return f"{update}, computed in exact chunked-parallel form{window}. Linear in T, causal by construction."


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _tidy(source: str) -> str:
    """Normalise blank lines the way a person would: two before top-level definitions, never more."""
    lines = [line.rstrip() for line in source.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
    return re.sub(r"\n+(?=(?:class|def) )", "\n\n\n", text)
