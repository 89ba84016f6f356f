"""A person's idea for the offline researcher: strict gene settings, applied as given."""
from __future__ import annotations

import re

import pytest

from agents.offline.genome import Genome, GenomeError
from agents.offline.ideas import apply_settings, check_idea, gene_settings
from agents.offline.search import develop_idea, genome_of, reference_genomes
from knowledge.records import Experiment, Fitness, Stage


def archived(exp_id: str, genome: Genome, name: str = "", fitness: float = 0.0) -> Experiment:
    return Experiment(id=exp_id, run="test", name=name or exp_id, proposer="offline", stage=Stage.ANALYZED,
                      status="ok", fitness=Fitness(value=fitness), genome=genome.to_dict())


def test_settings_are_read_from_free_text_with_typed_values():
    idea = "Bigger state please: key_expand=2, head_mult = 0.5 and conv=4; keep update=delta."
    assert gene_settings(idea) == {"key_expand": 2, "head_mult": 0.5, "conv": 4, "update": "delta"}
    assert gene_settings("try a larger state") == {}
    assert gene_settings("head_mult=2") == {"head_mult": 2.0}  # an integer where the choice is a float


@pytest.mark.parametrize(("idea", "message"), [
    ("state_size=4", "unknown gene 'state_size'; genes are"),
    ("conv=5", "gene 'conv' must be one of [0, 2, 3, 4], got '5'"),
    ("decay=exponential", "gene 'decay' must be one of"),
    ("conv=2 conv=3", "sets gene 'conv' twice"),
    ("update=delta key_norm=none", "cannot hold together: update='delta' needs key_norm='l2'"),
])
def test_bad_settings_are_refused_with_what_to_fix(idea, message):
    with pytest.raises(GenomeError, match=re.escape(message)):
        check_idea(idea)


def test_settings_win_and_their_dependents_follow():
    linear = reference_genomes()["linear_attention"]
    child = apply_settings(linear, {"update": "delta"})
    assert child.update == "delta" and child.key_norm == "l2"  # the delta rule needs normalised keys
    assert {gene for gene in linear.differences(child)} <= {"update", "key_norm", "normalizer", "feature_map"}


def test_an_idea_is_developed_from_the_parent_and_stays_new():
    parent_genome = reference_genomes()["gated_delta_rule"]
    parent = archived("e0001", parent_genome, name="gated_delta_rule")
    settings = gene_settings("local_window=64 conv=4")
    proposal = develop_idea([parent], settings, "local_window=64 conv=4", 7, parent)
    assert proposal.operator == "idea" and proposal.parent_id == "e0001"
    assert proposal.genome == apply_settings(parent_genome, settings)  # exactly what was asked
    assert '"local_window=64 conv=4"' in proposal.motivation and "already archived" not in proposal.motivation
    assert "local_window: 0 -> 64" in proposal.plan

    # the requested genome is archived already: other genes vary, the settings hold
    archive = [parent, archived("e0002", proposal.genome)]
    again = develop_idea(archive, settings, "local_window=64 conv=4", 7, parent)
    assert again.genome.local_window == 64 and again.genome.conv == 4
    assert again.genome.genome_id() not in {genome_of(e).genome_id() for e in archive}
    assert "already archived" in again.motivation
