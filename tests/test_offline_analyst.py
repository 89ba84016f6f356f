"""The offline analyst: factual comparisons with parent, siblings and baseline, in the LLM analyst's record."""
from __future__ import annotations

from agents.answers import Analysis
from agents.offline.analyst import analyze, compare_fitness, metric_deltas
from agents.offline.search import reference_genomes
from knowledge.records import Experiment, Fitness, Stage

GENOMES = reference_genomes()


def eval_json(accuracy: float, tokens_per_second: float, parameters: int) -> dict:
    return {"status": "ok", "parameters": parameters, "train_tokens_per_second": tokens_per_second,
            "metrics": {"accuracy": accuracy, "accuracy_by_length": {"64": accuracy + 0.1, "128": accuracy - 0.1},
                        "vocab_size": 128}}


def scored(exp_id: str, genome_name: str, fitness: Fitness, accuracy: float, parent_id: str | None = None,
           **fields) -> Experiment:
    genome = GENOMES[genome_name]
    return Experiment(id=exp_id, run="r", name=fields.pop("name", genome_name), parent_id=parent_id,
                      proposer=fields.pop("proposer", "offline"), genome=genome.to_dict(), stage=Stage.EVALUATED,
                      status="ok", fitness=fitness, metrics=eval_json(accuracy, 1000.0, 5000), **fields)


BASELINE = scored("e0000", "linear_attention", Fitness(value=0.0, stderr=0.01, seeds=3), 0.40, proposer="reference")
PARENT = scored("e0001", "selective_ssm", Fitness(value=0.20, stderr=0.01, seeds=3), 0.60)
# gated_delta_rule differs from selective_ssm in key_norm, update, chunk: a multi-gene change
CHILD = scored("e0002", "gated_delta_rule", Fitness(value=0.30, stderr=0.01, seeds=3), 0.70, parent_id="e0001")


def test_fitness_comparison_respects_the_noise_band():
    assert compare_fitness(Fitness(value=0.3, stderr=0.01), Fitness(value=0.2, stderr=0.01)).verdict == "better"
    assert compare_fitness(Fitness(value=0.2, stderr=0.01), Fitness(value=0.3, stderr=0.01)).verdict == "worse"
    close = compare_fitness(Fitness(value=0.21, stderr=0.01), Fitness(value=0.2, stderr=0.01))
    assert close.verdict == "within_noise" and not close.tentative
    one_seed = compare_fitness(Fitness(value=0.21), Fitness(value=0.2))
    assert one_seed.verdict == "better" and one_seed.tentative
    assert compare_fitness(None, Fitness(value=0.2)).verdict == "unknown"


def test_a_better_child_is_reported_with_deltas_changed_genes_and_a_next_step():
    analysis = analyze(CHILD, PARENT, [CHILD], BASELINE)
    assert isinstance(analysis, Analysis)
    assert "e0002" in analysis.summary and "+0.1000" in analysis.summary and "better" in analysis.summary
    assert "update additive -> delta" in analysis.tried and "key_norm none -> l2" in analysis.tried
    assert "accuracy: 0.7 (parent 0.6, +0.1) (baseline 0.4, +0.3)" in analysis.outcome_vs_expected
    assert "delta rule overwrites" in analysis.outcome_vs_expected  # the expected effect, from the table
    assert "cannot be attributed" in analysis.why  # several genes changed at once
    assert any("update additive -> delta" in lesson for lesson in analysis.lessons)
    assert analysis.suggested_next and analysis.suggested_next[0].startswith("Build on e0002")


def test_a_worse_child_suggests_reverting_and_points_at_a_better_sibling():
    worse = CHILD.model_copy(update={"fitness": Fitness(value=0.05, stderr=0.01, seeds=3)})
    sibling = scored("e0003", "retention", Fitness(value=0.4, stderr=0.01, seeds=3), 0.8, parent_id="e0001")
    analysis = analyze(worse, PARENT, [worse, sibling], BASELINE)
    assert "worse" in analysis.summary and "rank 2 of 2" in analysis.summary
    assert "Revert update to additive" in " ".join(analysis.suggested_next)
    assert any("e0003" in line for line in analysis.suggested_next)


def test_a_failed_child_is_recorded_with_its_reason_and_not_to_be_repeated():
    failed = CHILD.model_copy(update={"status": "leaky", "reason": "output at t=3 moved when t=5 changed",
                                      "fitness": None, "metrics": {}})
    analysis = analyze(failed, PARENT, [failed], BASELINE)
    assert "leaky" in analysis.summary and "t=3" in analysis.summary
    assert "leaky" in analysis.why
    assert any(line.startswith("Do not repeat update=delta") for line in analysis.suggested_next)
    assert any("failed with status leaky" in lesson for lesson in analysis.lessons)


def test_a_single_gene_change_is_attributed_to_that_gene():
    one_gene = PARENT.model_copy(update={"id": "e0004", "parent_id": "e0001",
                                         "genome": GENOMES["selective_ssm"].replace(conv=2).to_dict(),
                                         "fitness": Fitness(value=0.21, stderr=0.01, seeds=3)})
    analysis = analyze(one_gene, PARENT, [one_gene], BASELINE)
    assert "One gene changed (conv)" in analysis.why and "no measurable difference" in analysis.why
    assert "no measurable difference" in " ".join(analysis.suggested_next)


def test_metric_deltas_drop_task_constants_and_keep_nested_metrics():
    names = [row.name for row in metric_deltas(CHILD, PARENT, BASELINE)]
    assert "accuracy" in names and "accuracy_by_length.128" in names
    assert "vocab_size" not in names and "parameters" not in names  # equal everywhere


def test_a_reference_without_parent_is_described_not_compared():
    analysis = analyze(BASELINE, None, [], BASELINE)
    assert "no parent" in analysis.tried and "rank" not in analysis.summary and "vs" not in analysis.summary
