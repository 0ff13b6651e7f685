"""Prompt builders and answer scoring (no model needed)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from helpers import generation, intent_prompting, knowledge, prompting, retrieval
from helpers.lm import IGNORE_INDEX, chat_example
from helpers.models import load_chat_model
from tests.test_retrieval import ARTICLES, BagOfWords


@pytest.mark.parametrize(
    "reply, gold, expected",
    [
        ("A replacement card costs £7.40.", "£7.40", True),
        ("It costs £7.40 plus postage", "£7.40", True),
        ("It costs £7.45.", "£7.40", False),
        ("The fee is £5.", "£5", True),
        ("The fee is £50.", "£5", False),
        ("The fee is £5.90.", "£5", False),
        ("It arrives in 12 working days.", "2 working days", False),
        ("It arrives in 2 working days.", "2 working days", True),
        ("The code is 7 digits long, a 7-digit code.", "7-digit", True),
        ("You can wait 24 hours", "24 hours", True),
        ("It charges 10.5%", "0.5%", False),
        ("Transfers over £1,250 are blocked", "£250", False),
        ("Call 0800 146 2290 now", "0800 146 2290", True),
    ],
)
def test_contains_gold(reply, gold, expected):
    assert prompting.contains_gold(reply, gold) is expected


def test_token_f1():
    assert prompting.token_f1("6 working days", "6 working days") == 1.0
    assert prompting.token_f1("about 6 days", "6 working days") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert prompting.token_f1("no idea", "£7.40") == 0.0


def test_abstention_and_hallucination():
    right = prompting.score_answer("It costs £7.40.", "£7.40")
    unsure = prompting.score_answer("I'm sorry, I don't know that.", "£7.40")
    wrong = prompting.score_answer("A replacement card costs £5.", "£7.40")
    flags = lambda score: {k: score[k] for k in ("correct", "abstained", "hallucinated")}  # noqa: E731
    assert set(right) == {"correct", "f1", "abstained", "hallucinated", "kind"}
    assert flags(right) == {"correct": True, "abstained": False, "hallucinated": False}
    assert flags(unsure) == {"correct": False, "abstained": True, "hallucinated": False}
    assert flags(wrong) == {"correct": False, "abstained": False, "hallucinated": True}


def test_token_f1_of_a_right_answer_ending_a_sentence():
    # "It costs £7.40." against "£7.40": 1 of 3 reply tokens, 1 of 1 gold token -> F1 = 2 * 1/3 * 1 / (4/3) = 0.5
    assert prompting.score_answer("It costs £7.40.", "£7.40")["f1"] == pytest.approx(0.5)
    expected = ["it", "is", "50%", "then", "3,000", "or", "12:30"]  # no full stop kept on a figure
    assert prompting.answer_tokens("It is 50%. Then 3,000, or 12:30.") == expected


def test_token_f1_over_word_tokens_splits_figures():
    assert prompting.word_tokens("It costs £7.40, don't worry") == ["it", "costs", "7", "40", "don", "t", "worry"]
    assert prompting.word_tokens("top_up") == ["top", "up"]  # an underscore separates words too
    assert prompting.token_f1("the card is late", "the card is late", tokenize=prompting.word_tokens) == 1.0
    assert prompting.token_f1("card late", "the card is late", tokenize=prompting.word_tokens) == pytest.approx(
        2 * 1.0 * 0.5 / 1.5
    )
    assert prompting.token_f1("", "anything", tokenize=prompting.word_tokens) == 0.0
    # "£7.40" is one answer token but two word tokens: 2 of 4 reply words match both gold words
    assert prompting.token_f1("It costs £7.40.", "£7.40", tokenize=prompting.word_tokens) == pytest.approx(2 / 3)


def test_score_answers_means():
    out = prompting.score_answers(["£7.40", "I don't know", "£5"], ["£7.40", "£7.40", "£7.40"])
    assert out["accuracy"] == pytest.approx(1 / 3)
    assert out["hallucination_rate"] == pytest.approx(1 / 3)
    assert out["abstention_rate"] == pytest.approx(1 / 3)
    assert out["token_f1"] == pytest.approx(1 / 3)  # 1.0, 0.0, 0.0
    with pytest.raises(ValueError, match="one gold per reply"):
        prompting.score_answers(["a"], [])


def test_prompt_shapes():
    articles = knowledge.load_articles()
    train = knowledge.load_qa("train")
    assert prompting.zero_shot("Q?") == [{"role": "user", "content": "Question for Northwind Bank: Q?"}]
    assert prompting.engineered("Q?")[0]["role"] == "system"
    shots = prompting.pick_examples(train, 3, exclude_article="A03")
    assert len({s["article_id"] for s in shots}) == 3 and all(s["article_id"] != "A03" for s in shots)
    few = prompting.few_shot("Q?", shots)
    assert [m["role"] for m in few] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert few[2]["content"] == shots[0]["answer"]
    rag = prompting.rag("Q?", articles[:2])
    assert articles[0]["text"] in rag[-1]["content"] and rag[-1]["content"].endswith("Question: Q?")


def test_intent_prompt_and_parse():
    intents = ["card_arrival", "lost_or_stolen_card", "Refund_not_showing_up", "card_payment_fee_charged"]
    msgs = intent_prompting.intent_prompt(
        "Where is my card?", intents, examples=[("I lost my card", "lost_or_stolen_card")]
    )
    assert "refund not showing up" in msgs[0]["content"] and msgs[2]["content"] == "lost or stolen card"
    assert intent_prompting.parse_intent("Label: card arrival", intents) == 0
    assert intent_prompting.parse_intent("lost_or_stolen_card", intents) == 1
    assert intent_prompting.parse_intent("refund", intents) == 2
    assert intent_prompting.parse_intent("the weather", intents) == -1


@pytest.fixture(scope="module")
def tiny_chat():
    """A random 2-layer Llama with SmolLM2's tokenizer and chat template: the plumbing, not the quality."""
    _, tok = load_chat_model()  # builds the de-quantized cache once if needed
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    assert isinstance(tok, type(AutoTokenizer.from_pretrained(tok.name_or_path)))
    return LlamaForCausalLM(config).eval(), tok


def test_evaluate_prompts_and_classify_plumbing(tiny_chat, monkeypatch):
    model, tok = tiny_chat
    train = list({q["answer"]: q for q in knowledge.load_qa("train")}.values())[:3]  # 3 different answers
    convs, golds = [prompting.zero_shot(q["question"]) for q in train], [q["answer"] for q in train]
    replies, scores = prompting.evaluate_prompts(model, tok, convs, golds, max_new_tokens=4, batch_size=2)
    assert replies == generation.generate(model, tok, convs, max_new_tokens=4)  # greedy, in order
    assert scores["seconds_per_answer"] > 0
    # Each reply is scored against its own gold: scripted replies in place of the random model's.
    scripted = [f"It is {golds[0]}.", golds[1], "I don't know."]  # right, right, abstains
    monkeypatch.setattr(prompting, "timed_generate", lambda *args, **kw: (scripted, 0.25))
    _, scores = prompting.evaluate_prompts(model, tok, convs, golds)
    assert (scores["accuracy"], scores["abstention_rate"], scores["seconds_per_answer"]) == (2 / 3, 1 / 3, 0.25)
    assert scores["hallucination_rate"] == 0
    # Replies are parsed in order, one intent per text.
    seen = []
    monkeypatch.setattr(
        intent_prompting,
        "timed_generate",
        lambda m, t, c, **kw: seen.append(c) or (["Label: lost or stolen card", "the weather", "card arrival"], 0.5),
    )
    intents = ["card_arrival", "lost_or_stolen_card"]
    texts = ["I lost it", "hello", "where is my card"]
    preds, seconds = intent_prompting.classify_by_prompting(model, tok, texts, intents)
    assert preds == [1, -1, 0] and seconds == 0.5
    assert seen == [[intent_prompting.intent_prompt(t, intents, ()) for t in texts]]


def test_qa_conversation_masks_prompt(tiny_chat):
    _, tok = tiny_chat
    qa = knowledge.load_qa("train")[0]
    conv = prompting.qa_conversation(qa)
    assert conv[-1] == {"role": "assistant", "content": qa["answer"]}
    example = chat_example(conv, tok, max_length=256)
    taught = [t for t, lab in zip(example["input_ids"], example["labels"]) if lab != IGNORE_INDEX]
    assert qa["answer"] in tok.decode(taught)


def test_rag_prompts_hold_the_retrieved_articles():
    index = retrieval.build_index(ARTICLES, BagOfWords())
    fee, card = prompting.rag_prompts(["what fee?", "my card"], index, ARTICLES, k=1)
    assert "fee fee fee" in fee[-1]["content"] and "card card" not in fee[-1]["content"]
    assert "card card card" in card[-1]["content"] and card[-1]["content"].endswith("Question: my card")
    assert prompting.rag_prompts(["what fee?"], index, ARTICLES, k=2)[0][-1]["content"].count("\n- ") == 2


def test_share_stating():
    assert prompting.share_stating(["It is £650.", "£800 now", "£6500"], "£650") == 1 / 3
    assert prompting.share_stating([], "£650") == 0.0


def test_hallucination_is_a_figure_no_source_holds():
    a01 = knowledge.article_text(knowledge.by_id(knowledge.load_articles())["A01"])  # £8.30 express delivery
    # The old rule (wrong and no abstention) called both of these hallucinations.
    vague = prompting.score_answer("No, there is no such fee at Northwind.", "£7.40")
    assert (vague["hallucinated"], vague["kind"]) == (False, "no fact")
    misread = prompting.score_answer("It costs £8.30.", "£7.40", sources=[a01])
    assert (misread["correct"], misread["hallucinated"], misread["kind"]) == (False, False, "off-target")
    assert prompting.score_answer("It costs £8.30.", "£7.40")["hallucinated"]  # no source holds £8.30
    assert prompting.score_answer("That is 7.40 pounds.", "£7.40")["correct"]  # any spelling of the gold
    out = prompting.score_answers(["£8.30", "£9"], ["£7.40"] * 2, sources=[[a01], [a01]], questions=["Q", "Q"])
    assert out["hallucination_rate"] == 0.5 and out["accuracy"] == 0
    with pytest.raises(ValueError, match="one list of sources"):
        prompting.score_answers(["£8.30"], ["£7.40"], sources=[])
