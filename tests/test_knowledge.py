"""The Northwind Bank knowledge base: schema, internal consistency, loaders and policy changes."""

from __future__ import annotations

import pytest

from helpers import facts, knowledge
from helpers.data import banking77_intents
from helpers.prompting import contains_gold, fold_for_matching


@pytest.fixture(scope="module")
def kb():
    return knowledge.load_articles(), knowledge.load_qa("train"), knowledge.load_qa("heldout")


def test_sizes_and_unique_ids(kb):
    articles, train, heldout = kb
    assert len(articles) >= 40 and 140 <= len(train) <= 170 and 55 <= len(heldout) <= 70
    for rows in kb:
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids))


def test_schema(kb):
    articles, train, heldout = kb
    assert all(set(a) == {"id", "title", "intents", "text"} for a in articles)
    assert all(set(q) == {"id", "question", "answer", "article_id", "fact_id"} for q in train + heldout)


def test_intents_are_banking77_names_and_cover_all(kb):
    names = set(banking77_intents())
    covered = set(knowledge.intent_articles(kb[0]))
    assert covered <= names
    assert covered == names


def test_every_gold_answer_appears_in_its_source_article(kb):
    articles, train, heldout = kb
    index = knowledge.by_id(articles)
    for q in train + heldout:
        assert q["article_id"] in index, q
        assert contains_gold(index[q["article_id"]]["text"], q["answer"]), q


def test_heldout_questions_are_paraphrases_of_trained_facts(kb):
    _, train, heldout = kb
    train_questions = {fold_for_matching(q["question"]) for q in train}
    train_facts = {q["fact_id"] for q in train}
    for q in heldout:
        assert fold_for_matching(q["question"]) not in train_questions
        assert q["fact_id"] in train_facts  # the fine-tune saw this fact in other words


def test_a_fact_has_one_answer(kb):
    _, train, heldout = kb
    answers = {}
    for q in train + heldout:
        assert answers.setdefault(q["fact_id"], q["answer"]) == q["answer"]


def test_evidence_sentence(kb):
    article = knowledge.by_id(kb[0])["A03"]
    assert "£7.40" in knowledge.evidence_sentence(article, "£7.40")
    with pytest.raises(ValueError, match="does not appear"):
        knowledge.evidence_sentence(article, "£999")


def test_policy_change_edits_copies_only(kb):
    articles, _, heldout = kb
    new_articles, new_qa = knowledge.apply_policy_change(articles, heldout, "A03", "£7.40", "£9.90")
    old_a, new_a = knowledge.by_id(articles)["A03"], knowledge.by_id(new_articles)["A03"]
    assert "£7.40" in old_a["text"] and "£9.90" in new_a["text"] and "£7.40" not in new_a["text"]
    changed = [q for q in new_qa if q["answer"] == "£9.90"]
    assert changed and all(q["article_id"] == "A03" for q in changed)
    assert sum(q["answer"] == "£7.40" for q in heldout) == len(changed)  # the originals are untouched
    assert [a["text"] for a in new_articles if a["id"] != "A03"] == [a["text"] for a in articles if a["id"] != "A03"]


def test_policy_change_errors(kb):
    articles, _, heldout = kb
    with pytest.raises(ValueError, match="No article"):
        knowledge.apply_policy_change(articles, heldout, "A999", "£7.40", "£9.90")
    with pytest.raises(ValueError, match="does not appear"):
        knowledge.apply_policy_change(articles, heldout, "A03", "£1.00", "£9.90")


def test_sample_questions_is_reproducible(kb):
    heldout = kb[2]
    a, b = knowledge.sample_questions(heldout, 12, seed=1), knowledge.sample_questions(heldout, 12, seed=1)
    assert a == b and len(a) == 12
    assert a == [q for q in heldout if q in a]  # distinct questions of the file, in file order
    assert len({q["id"] for q in a}) == 12 and knowledge.sample_questions(heldout, 12, seed=2) != a
    assert knowledge.sample_questions(heldout, None) == heldout


def test_bad_split():
    with pytest.raises(ValueError, match="split must be"):
        knowledge.load_qa("test")


def test_every_gold_fact_is_read_from_its_source_article(kb):
    """helpers.facts reads each gold answer out of its own article: a right answer is never called invented."""
    articles, train, heldout = kb
    sources = knowledge.answer_sources(train + heldout, articles)
    for q, texts in zip(train + heldout, sources):
        verdict = facts.judge(texts[0], q["answer"], texts)
        assert verdict.kind == "correct", (q, verdict)


def test_answer_sources(kb):
    articles, _, heldout = kb
    q = heldout[0]  # answered by A01
    plain, shown = knowledge.answer_sources([q], articles), knowledge.answer_sources([q], articles, [["A03", "A01"]])
    assert plain == [[knowledge.article_text(knowledge.by_id(articles)[q["article_id"]])]]
    assert len(shown[0]) == 2 and "£7.40" in shown[0][1]  # the source once, then the other shown article
    with pytest.raises(ValueError, match="one per question"):
        knowledge.answer_sources([q], articles, [])
