"""The offline researcher: deterministic operators, no re-proposals, a bias toward what worked."""
from __future__ import annotations

import random
from collections import Counter

from agents.offline.genome import GENE_BY_NAME, GENES, Genome, constraint_violations
from agents.offline.operators import (ScoredGenome, crossover, elite_statistics, point_mutation,
                                      random_genome, toward_elites)
from agents.offline.search import genome_of, propose, reference_genomes
from agents.offline.tables import load_gene_effects
from knowledge.records import Experiment, Fitness, Stage

WEIGHTS = load_gene_effects().weights
REFERENCE_NAMES = {"linear_attention", "retention", "gated_linear_attention", "delta_rule", "gated_delta_rule",
                   "short_convolution", "selective_ssm"}


def experiment(exp_id: str, genome: Genome | None, fitness: float | None = None, **fields) -> Experiment:
    values = {"run": "test", "name": exp_id, "proposer": "offline", "stage": Stage.ANALYZED,
              "genome": genome.to_dict() if genome else None}
    if fitness is not None:
        values.update(status="ok", fitness=Fitness(value=fitness))
    return Experiment(id=exp_id, **{**values, **fields})


def seeded_archive() -> list[Experiment]:
    return [experiment(f"e{i:04d}", genome, fitness=0.01 * i, name=name, proposer="reference")
            for i, (name, genome) in enumerate(sorted(reference_genomes().items()))]


def test_reference_genomes_cover_the_references_except_softmax_attention():
    genomes = reference_genomes()
    assert set(genomes) == REFERENCE_NAMES
    assert len({g.genome_id() for g in genomes.values()}) == len(genomes)
    assert genomes["gated_delta_rule"].update == "delta" and genomes["gated_delta_rule"].decay == "scalar"
    assert genomes["linear_attention"].normalizer == "denominator"


def test_operators_are_deterministic_under_a_seed():
    parent, partner = reference_genomes()["retention"], reference_genomes()["gated_delta_rule"]
    statistics = elite_statistics([ScoredGenome(f"e{i}", g, float(i)) for i, g in enumerate(reference_genomes().values())])
    operators = [
        lambda rng: point_mutation(parent, rng, WEIGHTS, genes=2),
        lambda rng: crossover(parent, partner, rng),
        lambda rng: toward_elites(parent, statistics, rng, WEIGHTS),
        random_genome,
    ]
    for operator in operators:
        runs = [[operator(random.Random(seed)) for seed in range(20)] for _ in range(2)]
        assert runs[0] == runs[1]
        assert len(set(runs[0])) > 1  # the seed matters
    archive = seeded_archive()
    assert propose(archive, 7, parent=archive[2], references=[archive[3]]) == \
        propose(archive, 7, parent=archive[2], references=[archive[3]])


def test_point_mutation_changes_one_or_two_genes_plus_required_dependents():
    parent = reference_genomes()["selective_ssm"]
    for seed in range(200):
        child = point_mutation(parent, random.Random(seed), WEIGHTS, genes=1 + seed % 2)
        changed = parent.differences(child)
        assert 1 <= len(changed) <= 1 + seed % 2 + 1, changed  # a dependent gene may follow (delta needs l2)
        assert not constraint_violations(child.to_dict())


def test_point_mutation_prefers_the_genes_that_matter():
    parent = Genome()
    picked = Counter()
    for seed in range(600):
        picked.update(parent.differences(point_mutation(parent, random.Random(seed), WEIGHTS)).keys())
    assert picked["update"] > 2 * picked["chunk"] and picked["decay"] > 2 * picked["chunk"]


def test_crossover_takes_genes_from_both_parents_only():
    parent, partner = reference_genomes()["retention"], reference_genomes()["gated_delta_rule"]
    for seed in range(50):
        child = crossover(parent, partner, random.Random(seed))
        values = child.to_dict()
        assert all(values[g.name] in (parent.to_dict()[g.name], partner.to_dict()[g.name]) for g in GENES)
        assert child not in (parent, partner)


def test_toward_elites_moves_to_values_the_best_genomes_share():
    rng = random.Random(0)
    scored = []
    for i in range(40):  # the best quarter all use the delta rule with a scalar decay
        genome = random_genome(rng)
        good = i >= 30
        genome = genome.replace(update="delta", key_norm="l2", decay="scalar", normalizer="none") if good \
            else genome.replace(decay=rng.choice(["none", "fixed", "channel"]))
        scored.append(ScoredGenome(f"e{i:04d}", genome, fitness=1.0 if good else 0.0))
    statistics = elite_statistics(scored)
    parent = Genome(decay="none")
    moved = Counter()
    for seed in range(100):
        child = toward_elites(parent, statistics, random.Random(seed), WEIGHTS)
        moved.update(f"{gene}={new}" for gene, (_, new) in parent.differences(child).items())
    assert moved["decay=scalar"] + moved["update=delta"] > 60
    assert moved["decay=fixed"] == moved["decay=channel"] == 0


def test_never_proposes_an_archived_genome_even_when_the_neighbourhood_is_taken():
    parent_genome = reference_genomes()["gated_delta_rule"]
    neighbours = {parent_genome.replace(**{gene.name: value})
                  for gene in GENES for value in gene.choices
                  if not constraint_violations({**parent_genome.to_dict(), gene.name: value})}
    archive = seeded_archive() + [experiment(f"n{i:04d}", g, fitness=0.0) for i, g in enumerate(sorted(
        neighbours, key=Genome.genome_id))]
    parent = next(e for e in archive if e.name == "gated_delta_rule")
    taken = {genome_of(e).genome_id() for e in archive}
    for seed in range(40):
        proposal = propose(archive, seed, parent=parent, references=archive[:2])
        assert proposal.genome.genome_id() not in taken
        assert len(parent_genome.differences(proposal.genome)) >= 2 or proposal.operator == "random"


def test_proposal_text_states_the_operator_the_changes_and_their_expected_effect():
    archive = seeded_archive()
    parent = next(e for e in archive if e.name == "retention")
    operators = set()
    for seed in range(30):
        proposal = propose(archive, seed, parent=parent, references=[archive[0]])
        operators.add(proposal.operator)
        assert proposal.parent_id == parent.id and proposal.changes
        assert parent.id in proposal.motivation and parent.id in proposal.plan
        for change in proposal.changes:
            assert f"{change.gene}: {change.old} -> {change.new}" in proposal.plan
            assert change.effect in proposal.motivation
        assert proposal.genome.genome_id() in proposal.plan
        assert proposal.name.endswith(proposal.genome.genome_id()[:6])
    assert operators == {"mutate", "crossover", "toward_elites"}


def test_a_parent_outside_the_space_is_replaced_by_the_best_archived_genome():
    archive = seeded_archive() + [experiment("x0001", None, fitness=5.0, proposer="llm:model")]
    proposal = propose(archive, 3, parent=archive[-1])
    best = max(archive[:-1], key=lambda e: e.fitness.value)
    assert proposal.parent_id == best.id


def test_without_a_parent_selection_chooses_one_from_the_archive():
    archive = seeded_archive()
    proposals = [propose(archive, seed) for seed in range(6)]
    assert all(p.parent_id in {e.id for e in archive} for p in proposals)
    assert proposals == [propose(archive, seed) for seed in range(6)]


def test_an_empty_design_space_neighbourhood_or_no_genomes_falls_back_to_random():
    archive = [experiment("x0001", None, fitness=1.0, proposer="llm:model")]
    proposal = propose(archive, 0, parent=archive[0])
    assert proposal.operator == "random" and proposal.parent_id is None and proposal.motivation


def test_random_genome_is_valid_and_reaches_every_value():
    rng = random.Random(1)
    seen = {gene.name: set() for gene in GENES}
    for _ in range(500):
        genome = random_genome(rng)
        for name, value in genome.to_dict().items():
            seen[name].add(value)
    assert all(seen[name] == set(GENE_BY_NAME[name].choices) for name in seen)
