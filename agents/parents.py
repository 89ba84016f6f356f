"""Choosing a parent and references for a new proposal, from the archive, by the configured strategy."""
from __future__ import annotations

import zlib

from agents.lab import Lab
from knowledge.records import Experiment
from knowledge.selection import sample_parent, sample_references

REFERENCES_PER_PROPOSAL = 2


def selection_seed(run_seed: int, experiment_id: str) -> int:
    """A seed fixed by the run and the experiment, so a re-run step chooses the same parent."""
    return zlib.crc32(f"{run_seed}:{experiment_id}".encode())


def choose_parent_and_references(lab: Lab, exp: Experiment) -> tuple[Experiment, list[Experiment]]:
    briefs = lab.archive.briefs(run=lab.run)
    seed = selection_seed(lab.config.seed, exp.id)
    parent = sample_parent(briefs, seed, lab.config.search.strategy)
    references = sample_references(briefs, parent, REFERENCES_PER_PROPOSAL, seed)
    return lab.archive.get_experiment(parent.id), [lab.archive.get_experiment(r.id) for r in references]
