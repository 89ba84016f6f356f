"""The offline agents' data tables (under `data/`): gene effects and weights, reference genomes.

Kept as data so the expected effect of a change, the mutation weights and the reference
mapping can be read and tuned without touching code; loading checks them against `GENES`.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.offline.genome import GENES, Genome, GenomeError

DATA_DIR = Path(__file__).with_name("data")


@dataclass(frozen=True)
class GeneEffects:
    """Per gene: how often a point mutation picks it, and the expected effect of each value."""

    weights: dict[str, float]
    effects: dict[str, dict[str, str]]

    def effect(self, gene: str, value: Any) -> str:
        return self.effects[gene][str(value)]


@dataclass(frozen=True)
class ReferenceGenome:
    name: str
    genome: Genome
    approximates: str


def load_gene_effects(path: Path = DATA_DIR / "gene_effects.toml") -> GeneEffects:
    table = tomllib.loads(path.read_text())
    missing = [gene.name for gene in GENES if gene.name not in table]
    if missing:
        raise ValueError(f"{path}: no entry for gene(s) {missing}")
    weights, effects = {}, {}
    for gene in GENES:
        entry = table[gene.name]
        values = entry.get("values", {})
        uncovered = [str(choice) for choice in gene.choices if str(choice) not in values]
        if uncovered or not isinstance(entry.get("weight"), (int, float)) or entry["weight"] <= 0:
            raise ValueError(f"{path}: gene {gene.name!r} needs a positive `weight` and an effect for "
                             f"every value; missing values {uncovered}")
        weights[gene.name] = float(entry["weight"])
        effects[gene.name] = {str(choice): values[str(choice)] for choice in gene.choices}
    return GeneEffects(weights=weights, effects=effects)


def load_reference_genomes(path: Path = DATA_DIR / "reference_genomes.toml") -> dict[str, ReferenceGenome]:
    table = tomllib.loads(path.read_text())
    references = {}
    for name, entry in table.items():
        try:
            genome = Genome.from_dict(entry["genes"])
        except (KeyError, GenomeError) as error:
            raise ValueError(f"{path}: reference {name!r} has no valid `genes` table: {error}") from error
        references[name] = ReferenceGenome(name, genome, entry.get("approximates", ""))
    return references
