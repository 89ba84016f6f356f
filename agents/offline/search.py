"""The offline researcher: new genomes from archived ones, with no language model.

Given the parent and references that selection (knowledge/selection.py, via agents/parents.py)
chose, `propose` applies one variation operator (point mutation weighted toward the genes that
matter, crossover with a reference or elite, or a step toward gene values over-represented
among the elites), never returns a genome already in the archive, and writes the motivation
and plan from prompts/offline_proposal.j2. Pure: same archive, parent, references and seed
give the same proposal.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Sequence

from agents.offline.genome import Genome, GenomeError
from agents.offline.ideas import apply_settings
from agents.offline.operators import (EliteStatistics, ScoredGenome, crossover, elite_statistics,
                                      point_mutation, random_genome, toward_elites)
from agents.offline.render import candidate_name
from agents.offline.tables import GeneEffects, load_gene_effects, load_reference_genomes
from agents.offline.text import render_blocks
from knowledge.records import Experiment
from knowledge.selection import sample_parent, sample_references

OPERATOR_WEIGHTS = {"mutate": 0.5, "crossover": 0.25, "toward_elites": 0.25}
MIN_SCORED_FOR_ELITES = 4     # below this, "what worked" is noise: the operator is not offered
TWO_GENE_PROBABILITY = 0.3    # a point mutation or elite step changes two genes this often
MAX_ATTEMPTS = 64             # tries before falling back to a fresh random genome
ELITE_REFERENCES = 5          # elites listed as references of a toward_elites proposal
REFERENCES_PER_PROPOSAL = 2   # crossover partners drawn by selection when it also picks the parent

__all__ = ["Change", "OfflineProposal", "develop_idea", "genome_of", "propose", "random_genome", "reference_genomes"]


@dataclass(frozen=True)
class Change:
    """One gene that differs from the parent, with the expected effect of its new value."""

    gene: str
    old: Any
    new: Any
    effect: str


@dataclass(frozen=True)
class OfflineProposal:
    genome: Genome
    name: str
    motivation: str
    plan: str
    parent_id: str | None          # the experiment whose genome was varied (None: a fresh random genome)
    reference_ids: tuple[str, ...]  # the crossover partner, or the elites a toward_elites step followed
    operator: str                  # mutate, crossover, toward_elites, random, idea
    changes: tuple[Change, ...]


def reference_genomes() -> dict[str, Genome]:
    """Reference name -> its closest genome (softmax_attention has none: it is outside the space)."""
    return {name: entry.genome for name, entry in load_reference_genomes().items()}


def genome_of(exp: Experiment) -> Genome | None:
    """The experiment's genome: recorded, or a reference's mapped one; None for code outside the space."""
    if exp.genome is not None:
        try:
            return Genome.from_dict(exp.genome)
        except GenomeError:
            return None  # recorded by an older design space: treat as outside it
    if exp.proposer == "reference":
        return reference_genomes().get(exp.name)
    return None


def propose(archive: Sequence[Experiment], rng_seed: int, parent: Experiment | None = None,
            references: Sequence[Experiment] = ()) -> OfflineProposal:
    """A new genome varied from `parent` (or, if it lies outside the space, the best archived genome).

    Without a `parent`, selection chooses the parent and references from `archive` with the same
    seed (knowledge.selection: UCT or quality-diversity, alternating with the seed).
    """
    if parent is None:
        parent = sample_parent(archive, rng_seed)
        references = sample_references(archive, parent, REFERENCES_PER_PROPOSAL, rng_seed)
    rng = random.Random(rng_seed)
    effects = load_gene_effects()
    genomes, taken = _archived_genomes(archive)
    scored = [ScoredGenome(exp.id, genomes[exp.id], exp.fitness.value) for exp in archive
              if exp.id in genomes and _usable_fitness(exp)]
    base, base_genome = _base(parent, archive, genomes)
    if base_genome is not None:
        taken.add(base_genome.genome_id())
    partners = _partners(base, base_genome, references, scored)
    statistics = elite_statistics(scored) if len(scored) >= MIN_SCORED_FOR_ELITES else None

    if base_genome is not None:
        for attempt in range(MAX_ATTEMPTS):
            operator = _choose_operator(rng, bool(partners), statistics is not None, attempt)
            genes = 2 if rng.random() < TWO_GENE_PROBABILITY or attempt >= MAX_ATTEMPTS // 2 else 1
            partner: tuple[Experiment | ScoredGenome, Genome] | None = None
            if operator == "crossover":
                partner = rng.choice(partners)
                child = crossover(base_genome, partner[1], rng)
            elif operator == "toward_elites":
                child = toward_elites(base_genome, statistics, rng, effects.weights, genes)
            else:
                child = point_mutation(base_genome, rng, effects.weights, genes)
            if child.genome_id() not in taken:
                followed = _followed(operator, partner, statistics)
                return _proposal(child, operator, base, base_genome, followed, statistics, effects)
    while True:  # the neighbourhood is exhausted (or there is no genome to vary): start afresh
        child = random_genome(rng)
        if child.genome_id() not in taken:
            return _proposal(child, "random", None, None, (), None, effects)


def develop_idea(archive: Sequence[Experiment], settings: dict[str, Any], idea: str, rng_seed: int,
                 parent: Experiment) -> OfflineProposal:
    """A person's gene settings (agents.offline.ideas) applied to the parent's genome, or to the
    best archived one when the parent lies outside the space.

    If that genome is archived already, other genes are mutated (the settings never are) until
    it is new; past the bound the person's exact request is evaluated again rather than refused.
    """
    rng = random.Random(rng_seed)
    effects = load_gene_effects()
    genomes, taken = _archived_genomes(archive)
    base, base_genome = _base(parent, archive, genomes)
    requested = apply_settings(base_genome or Genome(), settings)
    free_genes = {gene: weight for gene, weight in effects.weights.items() if gene not in settings}
    child = requested
    for attempt in range(MAX_ATTEMPTS):
        if child.genome_id() not in taken:
            break
        genes = 1 + attempt * 2 // MAX_ATTEMPTS
        child = apply_settings(point_mutation(requested, rng, free_genes, genes), settings)
    else:
        child = requested
    about = {"text": idea, "settings": settings, "varied": child != requested}
    return _proposal(child, "idea", base, base_genome, (), None, effects, idea=about)


def _archived_genomes(archive: Sequence[Experiment]) -> tuple[dict[str, Genome], set[str]]:
    """Experiment id -> genome for those inside the space, and the genome ids already taken."""
    genomes = {exp.id: genome for exp in archive if (genome := genome_of(exp)) is not None}
    return genomes, {genome.genome_id() for genome in genomes.values()}


def _usable_fitness(exp: Experiment) -> bool:
    return exp.fitness is not None and exp.status == "ok" and not exp.fitness.flagged


def _base(parent: Experiment, archive: Sequence[Experiment],
          genomes: dict[str, Genome]) -> tuple[Experiment | None, Genome | None]:
    """The experiment to vary: the parent, or when its code lies outside the design space
    (an LLM's or softmax attention), the archived genome with the best fitness."""
    own = genome_of(parent)
    if own is not None:
        return parent, own
    candidates = [exp for exp in archive if exp.id in genomes]
    if not candidates:
        return None, None
    best = max(candidates, key=lambda exp: (_usable_fitness(exp), exp.fitness.value if exp.fitness else 0.0,
                                            exp.id))
    return best, genomes[best.id]


def _partners(base: Experiment | None, base_genome: Genome | None, references: Sequence[Experiment],
              scored: Sequence[ScoredGenome]) -> list[tuple[Experiment | ScoredGenome, Genome]]:
    """Crossover partners: the references selection chose, else the elites; never the base itself."""
    chosen = [(ref, genome) for ref in references if (genome := genome_of(ref)) is not None]
    if not chosen and scored:
        chosen = [(item, item.genome) for item in elite_statistics(scored).elites]
    base_id = base.id if base else None
    return [(item, genome) for item, genome in chosen
            if _item_id(item) != base_id and genome != base_genome]


def _choose_operator(rng: random.Random, has_partners: bool, has_elites: bool, attempt: int) -> str:
    available = {"mutate": True, "crossover": has_partners, "toward_elites": has_elites}
    if attempt >= MAX_ATTEMPTS // 4:  # crossovers and elite steps keep landing on archived genomes
        return "mutate"
    names = [name for name, ok in available.items() if ok]
    return rng.choices(names, weights=[OPERATOR_WEIGHTS[name] for name in names])[0]


def _followed(operator: str, partner: tuple[Experiment | ScoredGenome, Genome] | None,
              statistics: EliteStatistics | None) -> tuple[str, ...]:
    if operator == "crossover" and partner is not None:
        return (_item_id(partner[0]),)
    if operator == "toward_elites" and statistics is not None:
        return tuple(item.experiment_id for item in statistics.elites[:ELITE_REFERENCES])
    return ()


def _item_id(item: Experiment | ScoredGenome) -> str:
    return item.id if isinstance(item, Experiment) else item.experiment_id


def _proposal(child: Genome, operator: str, base: Experiment | None, base_genome: Genome | None,
              followed: tuple[str, ...], statistics: EliteStatistics | None,
              effects: GeneEffects, idea: dict[str, Any] | None = None) -> OfflineProposal:
    differences = base_genome.differences(child) if base_genome is not None else {}
    changes = tuple(Change(gene, old, new, effects.effect(gene, new)) for gene, (old, new) in differences.items())
    evidence = []
    if operator == "toward_elites" and statistics is not None:
        evidence = [statistics.shares[change.gene][change.new] for change in changes]
    text = render_blocks(
        "offline_proposal.j2", ("motivation", "plan"),
        operator=operator,
        child={"name": candidate_name(child), "description": child.describe(), "genome_id": child.genome_id()},
        parent=_summary(base, base_genome),
        changes=changes,
        followed=list(followed),
        evidence=evidence,
        elites=len(statistics.elites) if statistics is not None else 0,
        scored=statistics.scored if statistics is not None else 0,
        idea=idea,
    )
    return OfflineProposal(
        genome=child, name=candidate_name(child), motivation=text["motivation"], plan=text["plan"],
        parent_id=base.id if base else None, reference_ids=followed, operator=operator, changes=changes,
    )


def _summary(exp: Experiment | None, genome: Genome | None) -> dict[str, Any] | None:
    if exp is None or genome is None:
        return None
    fitness = exp.fitness.value if exp.fitness is not None and exp.status == "ok" else None
    return {"id": exp.id, "name": exp.name, "description": genome.describe(), "fitness": fitness}
