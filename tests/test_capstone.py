"""The capstone assistant's plumbing with tiny models: routing, escalation, baselines, scoring, training data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from helpers import adapters, knowledge, models, prompting, retrieval, runtime
from helpers.chat import fine_tune_chat
from helpers.intervals import in_words
from helpers.lessons import capstone, capstone_scores, instruction_tuning
from helpers.training import TrainConfig

INTENTS = list(runtime.CORE_INTENTS[:4])


class HashEmbedder:
    """A stand-in sentence embedder: hashed bag of words (deterministic, instant)."""

    def encode(self, texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=32):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % 64] += 1
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-9, None)


@pytest.fixture(scope="module")
def parts():
    torch.manual_seed(0)
    articles = knowledge.load_articles()
    cfg = AutoConfig.from_pretrained(
        models.minilm_dir(),
        num_labels=len(INTENTS),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    clf = AutoModelForSequenceClassification.from_config(cfg).eval()
    chat_tok = AutoTokenizer.from_pretrained(
        models.chat_cache_dir() if (models.chat_cache_dir() / "config.json").exists() else models._cached_smollm()
    )
    chat_tok.pad_token = chat_tok.pad_token or chat_tok.eos_token
    llama = AutoConfig.for_model(
        "llama",
        vocab_size=len(chat_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    writer = adapters.add_lora(AutoModelForCausalLM.from_config(llama), rank=2)
    index = retrieval.build_index(articles, HashEmbedder())
    return dict(
        articles=articles,
        clf=clf,
        clf_tok=AutoTokenizer.from_pretrained(models.minilm_dir()),
        writer=writer,
        chat_tok=chat_tok,
        index=index,
    )


def test_grounded_reply_meets_voice_and_states_the_fact():
    articles = knowledge.by_id(knowledge.load_articles())
    for q in knowledge.load_qa("train")[:20]:
        reply = capstone.grounded_reply(articles[q["article_id"]], q["answer"])
        assert prompting.contains_gold(reply, q["answer"])
        checks = instruction_tuning.check_voice(reply)
        assert all(v for k, v in checks.items() if k != "short"), checks
    assert instruction_tuning.follows_voice(capstone.ESCALATION_REPLY)


def test_training_and_eval_data_stay_in_scope():
    articles = knowledge.load_articles()
    chats = capstone.training_conversations(INTENTS, articles)
    grounded = [c for c in chats if "Policy:" in c[0]["content"]]
    assert grounded and len(grounded) < len(chats) and all(c[-1]["role"] == "assistant" for c in chats)
    questions = capstone.eval_messages(INTENTS, articles, n=5)
    assert 0 < len(questions) <= 5 and all(
        set(q["gold_intents"]) <= set(INTENTS) and q["gold_intents"] for q in questions
    )


def _assistant(p: dict, threshold: float) -> capstone.Assistant:
    """The tiny parts wired into one assistant that escalates below ``threshold`` (4 new tokens a reply)."""
    return capstone.Assistant(
        p["clf"],
        p["clf_tok"],
        INTENTS,
        16,
        threshold=threshold,
        index=p["index"],
        articles=p["articles"],
        writer=p["writer"],
        writer_tokenizer=p["chat_tok"],
        max_new_tokens=4,
    )


def test_low_confidence_escalates_and_high_threshold_zero_facts(parts):
    p = parts
    bot = _assistant(p, threshold=1.01)
    questions = capstone.eval_messages(INTENTS, p["articles"], n=3)
    turns = bot.reply([q["question"] for q in questions])
    assert all(t.escalated and t.reply == capstone.ESCALATION_REPLY and t.article_id is None for t in turns)
    frame = capstone_scores.score(turns, questions)
    assert frame["escalated"].all() and not frame["right_fact"].any() and frame["voice_ok"].all()
    assert "human" in capstone.stages(turns[0], p["articles"])["output"][1]


def test_confident_route_picks_an_article_of_the_intent_when_retrieved(parts):
    p = parts
    bot = _assistant(p, threshold=0.0)
    known = knowledge.by_id(p["articles"])
    turns = bot.reply(["my card has not arrived yet", "what exchange rate do you use"])
    for t in turns:
        assert not t.escalated and t.article_id in t.retrieved and t.reply
        agree = [i for i in t.retrieved if t.intent in known[i]["intents"]]
        assert t.article_id == (agree or t.retrieved)[0]


def test_baselines_and_scoreboard(parts):
    p = parts
    questions = capstone.eval_messages(INTENTS, p["articles"], n=2)
    frames = {
        k: capstone_scores.score(
            capstone.baseline_turns(
                k, questions, p["writer"], p["chat_tok"], p["index"], p["articles"], max_new_tokens=3
            ),
            questions,
        )
        for k in ("prompt-only", "rag-only", "fine-tune-only")
    }
    board = capstone_scores.scoreboard(frames)
    assert list(board.index) == ["prompt-only", "rag-only", "fine-tune-only"]
    assert board["right intent"].isna().all() and (board["escalated"] == 0).all()
    with pytest.raises(ValueError, match="kind must be"):
        capstone.baseline_turns("magic", questions, p["writer"], p["chat_tok"], p["index"], p["articles"])


def test_the_writer_trains_on_the_capstone_chats_with_the_chat_recipe(parts):
    p = parts
    llama = AutoConfig.for_model(
        "llama",
        vocab_size=len(p["chat_tok"]),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
    )
    base = AutoModelForCausalLM.from_config(llama)
    chats = capstone.training_conversations(INTENTS, p["articles"])[:8]
    frozen = {n: w.clone() for n, w in base.named_parameters()}
    config = TrainConfig(learning_rate=2e-3, max_steps=2, batch_size=4, restore_best=False, progress=False)
    run = fine_tune_chat(chats, config, model=base, tokenizer=p["chat_tok"], max_length=208, rank=2)
    model, history = run.model, run.history
    assert history.steps == 2 and np.isfinite(history.final_loss)
    changed = [
        n
        for n, w in model.named_parameters()
        if "lora_" not in n
        and not torch.equal(w, frozen[n.replace("base_model.model.", "").replace(".base_layer", "")])
    ]
    assert not changed, changed[:3]
    lora_b = [w for n, w in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(w) for w in lora_b)  # the adapter moved off its zero init


def test_score_reads_facts_and_an_escalation_states_none():
    articles = knowledge.load_articles()
    q = capstone.eval_messages(INTENTS, articles, n=1)[0]
    replies = [(f"It is {q['answer']}.", False), ("It costs £123.45.", False), (capstone.ESCALATION_REPLY, True)]
    turns = [
        capstone.Turn(q["question"], "x", 0.9, esc, None if esc else q["article_id"], [], reply, 0.1)
        for reply, esc in replies
    ]
    frame = capstone_scores.score(turns, [q] * 3, articles)
    assert list(frame["fact_kind"]) == ["correct", "hallucinated", "no fact"]
    assert list(frame["right_fact"]) == [True, False, False] and list(frame["hallucinated"]) == [False, True, False]
    assert [v.kind for v in capstone_scores.answered_verdicts({"a": frame})["a"]] == ["correct", "hallucinated"]
    assert not frame["usable"].any()  # the right fact alone is not enough: "It is ..." breaks the voice rules


def test_usable_needs_the_right_fact_nothing_invented_and_the_voice():
    articles = knowledge.load_articles()
    q = capstone.eval_messages(INTENTS, articles, n=1)[0]
    known = knowledge.by_id(articles)
    sendable = capstone.grounded_reply(known[q["article_id"]], q["answer"])
    invented = sendable.replace(capstone.FOLLOW_UP, "Next step: pay the £987.65 fee in the app today.")
    wrong = sendable.replace(knowledge.evidence_sentence(known[q["article_id"]], q["answer"]), "Let me check.")
    replies = [(sendable, False), (invented, False), (wrong, False), (capstone.ESCALATION_REPLY, True)]
    turns = [
        capstone.Turn(q["question"], "x", 0.9, esc, None if esc else q["article_id"], [], reply, 0.1)
        for reply, esc in replies
    ]
    frame = capstone_scores.score(turns, [q] * 4, articles)
    assert list(frame["voice_ok"]) == [True, True, True, True]
    assert list(frame["usable"]) == [True, False, False, False]
    board = capstone_scores.scoreboard({"a": frame})
    assert board.loc["a", "usable replies"] == 0.25


def test_gaps_name_a_winner_only_where_the_interval_excludes_zero():
    def frame(right):
        return pd.DataFrame({"right_fact": right, "hallucinated": [False] * len(right)})

    frames = {"whole": frame([True] * 10 + [False] * 2), "part": frame([False] * 10 + [True] * 2)}
    frames["twin"] = frame([True] * 9 + [False, True, False])
    gaps = capstone_scores.gaps(frames, "whole")
    assert set(gaps) == {"part", "twin"} and gaps["part"].low > 0
    words = in_words(gaps["part"], "whole", "part", "states the right fact more often")
    assert words == "whole states the right fact more often than part"
    assert in_words(gaps["twin"], "whole", "twin", "is right more often") == "no measurable difference at this size"
    backwards = capstone_scores.gaps(frames, "part")["whole"]
    assert in_words(backwards, "part", "whole", "is right more often").startswith("whole is right more often")
    with pytest.raises(ValueError, match="No system"):
        capstone_scores.gaps(frames, "everything")


def test_strongest_part_has_most_right_facts_and_ties_go_to_fewer_hallucinations():
    board = pd.DataFrame(
        {"right facts": [0.5, 0.0, 0.0, 0.2], "hallucinated": [0.1, 0.5, 0.1, 0.3]},
        index=["whole", "prompt-only", "rag-only", "fine-tune-only"],
    )
    assert capstone_scores.strongest_part(board, "whole") == "fine-tune-only"
    board.loc["fine-tune-only", "right facts"] = 0.0
    assert capstone_scores.strongest_part(board, "whole") == "rag-only"  # tied on facts, fewer invented
    board["usable replies"] = [0.4, 0.0, 0.1, 0.3]
    assert capstone_scores.strongest_part(board, "whole", "usable replies") == "fine-tune-only"
    board.loc["rag-only", "usable replies"] = 0.3  # tied on usable and on facts: fewer invented wins
    assert capstone_scores.strongest_part(board, "whole", "usable replies") == "rag-only"
    with pytest.raises(ValueError, match="No column"):
        capstone_scores.strongest_part(board, "whole", "charm")
