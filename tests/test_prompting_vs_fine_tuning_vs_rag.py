"""Notebook 03's scope of facts: drawn from the seed alone, never from the questions that will be scored."""

from helpers import knowledge
from helpers.lessons import prompting_vs_fine_tuning_vs_rag as lesson
from helpers.runtime import profile


def test_fact_scope_is_drawn_from_the_seed_and_covers_all_facts_when_asked():
    heldout = knowledge.load_qa("heldout")
    facts = {q["fact_id"] for q in heldout}
    scope = lesson.fact_scope(heldout, 12, seed=0)
    assert len(scope) == 12 and scope <= facts
    assert scope == lesson.fact_scope(list(reversed(heldout)), 12, seed=0)  # not the order questions come in
    assert scope != lesson.fact_scope(heldout, 12, seed=1)
    assert lesson.fact_scope(heldout, None) == facts == lesson.fact_scope(heldout, 10_000)


def test_scope_sizes_per_profile():
    assert lesson.experiment_sizes(profile("smoke"))["scope_facts"] == profile("smoke").n_generate
    assert lesson.experiment_sizes(profile("full"))["scope_facts"] is None
