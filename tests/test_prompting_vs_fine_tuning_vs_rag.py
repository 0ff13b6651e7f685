"""Notebook 03's scope of facts: drawn from the seed alone, never from the questions that will be scored."""

import pytest

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


def test_rag_styles_put_the_articles_where_they_say():
    articles = knowledge.load_articles()[:2]
    writer = lesson.rag_conversation("What fee?", articles, "writer")
    assert [m["role"] for m in writer] == ["system", "user"] and writer[-1]["content"] == "What fee?"
    assert all(knowledge.article_text(a) in writer[0]["content"] for a in articles)
    instruction = lesson.rag_conversation("What fee?", articles, "instruction")
    assert all(knowledge.article_text(a) in instruction[-1]["content"] for a in articles)
    assert "I don't know" in instruction[0]["content"] and "I don't know" not in writer[0]["content"]
    with pytest.raises(ValueError, match="writer"):
        lesson.rag_conversation("What fee?", articles, "chatty")


def test_prompt_choice_and_seeds_per_profile():
    smoke, workshop, full = (profile(name) for name in ("smoke", "workshop", "full"))
    assert len(lesson.rag_candidates(smoke)) == 1 and lesson.experiment_sizes(smoke)["validation_questions"] == 0
    assert set(lesson.rag_candidates(full)) == {(s, k) for s in lesson.RAG_STYLES for k in (1, 3)}
    assert lesson.rag_candidates(smoke) == lesson.rag_candidates(workshop) == [("instruction", 3)]
    assert lesson.seeds(smoke) == [0] and len(lesson.seeds(workshop)) >= 2 and len(lesson.seeds(full)) == 3
    heldout = {q["question"] for q in knowledge.load_qa("heldout")}
    val = lesson.validation_questions(knowledge.load_qa("train"), 20, seed=0)
    assert len(val) == 20 and not {q["question"] for q in val} & heldout


def test_fine_tune_rows_score_each_approach_and_the_stale_answers():
    scores = {
        "LoRA fine-tune": {"accuracy": 0.25, "hallucination_rate": 0.5},
        "RAG + fine-tune": {"accuracy": 0.5, "hallucination_rate": 0.25},
    }
    rows = lesson.fine_tune_rows(scores, ["It is £650.", "£650", "£800 now"], "£650", "£800")
    assert [r["approach"] for r in rows] == ["LoRA fine-tune", "RAG + fine-tune"]
    assert rows[1]["accuracy"] == 0.5 and rows[0]["hallucination rate"] == 0.5
    assert rows[0]["says old value"] == 2 / 3 and rows[0]["says new value"] == 1 / 3
    assert "says old value" not in rows[1]
