"""A person's idea, as the offline researcher reads it: the gene settings it names.

With no language model, the part of an idea the offline researcher can act on is a list of
`gene=value` settings of the design space (`update=delta conv=4 local_window=64`); the words
around them are kept only as the proposal's context. Parsing is strict so that a typo is
refused when the idea is given (`archlab review --idea`), not silently ignored later.
"""
from __future__ import annotations

import re
from typing import Any

from agents.offline.genome import GENE_BY_NAME, GENES, Genome, GenomeError, constraint_violations, repair

GENE_SETTING = re.compile(r"([A-Za-z_]+)\s*=\s*(\w+(?:\.\w+)?)")  # a sentence's full stop is not part of a value


def gene_settings(idea: str) -> dict[str, Any]:
    """The `gene=value` settings an idea names (empty when it names none).

    Raises GenomeError naming the gene and its choices for an unknown gene or value, or for a
    gene set twice to different values."""
    settings: dict[str, Any] = {}
    for name, text in GENE_SETTING.findall(idea):
        gene = GENE_BY_NAME.get(name)
        if gene is None:
            raise GenomeError(f"the idea sets unknown gene {name!r}; genes are {[g.name for g in GENES]}")
        value = _choice(name, text)
        if settings.get(name, value) != value:
            raise GenomeError(f"the idea sets gene {name!r} twice: {settings[name]!r} and {value!r}")
        settings[name] = value
    return settings


def apply_settings(genome: Genome, settings: dict[str, Any]) -> Genome:
    """`genome` with the settings applied; genes that depend on them are adjusted, the settings
    never are. Raises GenomeError when the settings contradict each other."""
    requested = {**genome.to_dict(), **settings}
    values = requested
    for name in settings:
        values = repair(values, keep=name)
    contradicted = [name for name, value in settings.items() if values[name] != value]
    if contradicted or constraint_violations(values):
        detail = "; ".join(constraint_violations(requested)) or f"they force a change of {contradicted}"
        raise GenomeError(f"the idea's settings {settings} cannot hold together: {detail}")
    return Genome.from_dict(values)


def check_idea(idea: str) -> dict[str, Any]:
    """The settings of an idea, checked against the design space as a whole (for the CLI)."""
    settings = gene_settings(idea)
    apply_settings(Genome(), settings)
    return settings


def _choice(name: str, text: str) -> Any:
    gene = GENE_BY_NAME[name]
    for choice in gene.choices:
        if text == str(choice) or (isinstance(choice, (int, float)) and _number(text) == choice):
            return choice
    raise GenomeError(f"gene {name!r} must be one of {list(gene.choices)}, got {text!r} ({gene.doc})")


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
