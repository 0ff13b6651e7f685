import numpy as np
import pytest
import torch

from helpers import lm
from tests.tiny import tiny_causal_lm


def test_assistant_only_masks_the_prompt(chat_tok):
    messages = [{"role": "user", "content": "What is the fee?"}, {"role": "assistant", "content": "It is £5."}]
    ex = lm.chat_example(messages, chat_tok, max_length=128)
    learned = chat_tok.decode([t for t, label in zip(ex["input_ids"], ex["labels"]) if label != lm.IGNORE_INDEX])
    assert learned.startswith("It is £5.")
    assert "What is the fee" not in learned
    full = lm.chat_example(messages, chat_tok, max_length=128, assistant_only=False)
    assert lm.IGNORE_INDEX not in full["labels"]


def test_chat_example_requires_assistant_last(chat_tok):
    with pytest.raises(ValueError, match="assistant"):
        lm.chat_example([{"role": "user", "content": "hi"}], chat_tok, 32)


def test_truncation_respects_max_length(chat_tok):
    messages = [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "ok"}]
    assert len(lm.chat_example(messages, chat_tok, max_length=40)["input_ids"]) == 40


def test_collator_pads_labels_with_ignore_index(chat_tok):
    ds = lm.text_examples(["short", "a much longer piece of text here"], chat_tok, 32)
    batch = lm.lm_collator(chat_tok)([ds[0], ds[1]])
    assert batch["input_ids"].shape == batch["labels"].shape
    real = batch["attention_mask"].bool()
    pads = len(ds[1]["input_ids"]) - len(ds[0]["input_ids"])
    assert pads > 0 and (~real[0]).sum() == pads and real[1].all()
    # Real tokens keep their labels (= input ids for plain text); every padded position is ignored by the loss.
    assert torch.equal(batch["labels"][real], batch["input_ids"][real])
    assert (batch["labels"][~real] == lm.IGNORE_INDEX).all()


class FakeChatTokenizer:
    """Renders a chat as one token per word plus a marker per turn, like a chat template does."""

    def apply_chat_template(self, messages, add_generation_prompt=False, tokenize=True, return_dict=False):
        ids = []
        for m in messages:
            ids += [1] + [len(w) + 10 for w in m["content"].split()] + [2]
        return ids + ([1] if add_generation_prompt else [])

    def convert_ids_to_tokens(self, ids):
        return [str(i) for i in ids]


def test_truncation_stats_and_learned_tokens():
    tok = FakeChatTokenizer()
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]
    long = [{"role": "user", "content": "word " * 20}, {"role": "assistant", "content": "ok"}]
    stats = lm.truncation_stats([short, long], tok, max_length=8)
    assert stats["tokens"].tolist() == [7, 25]
    assert stats["truncated"].tolist() == [False, True] and stats["nothing_learned"].tolist() == [False, True]
    tokens = lm.learned_tokens(lm.chat_example(short, tok, 10), tok)
    assert tokens["learned"].tolist() == [False] * 4 + [True] * 3


def test_token_logprobs_match_cross_entropy_and_skip_ignored():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 5, 11), torch.randint(0, 11, (2, 5))
    targets[0, :2] = lm.IGNORE_INDEX
    per_token = lm.token_logprobs(logits, targets)
    expected = -torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    assert per_token.shape == (2, 5) and torch.allclose(per_token, expected.masked_fill(targets < 0, 0.0), atol=1e-6)


def test_query_losses_add_up_to_perplexity(chat_tok):
    model = tiny_causal_lm(len(chat_tok), hidden=32, layers=1).eval()
    texts = ["I lost my card yesterday and need a new one", "card?", "why was I charged twice for one payment", "hi"]
    held = lm.text_examples(texts, chat_tok, max_length=16)
    nll, tokens = lm.query_losses(model, held, chat_tok, batch_size=3)  # padded batches
    assert tokens.tolist() == [len(ids) - 1 for ids in held["input_ids"]]  # every token after the first is predicted
    one_by_one = [  # the model's own mean loss on each text alone, times the tokens it predicts
        float(model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss) * (len(ids) - 1)
        if len(ids) > 1
        else 0.0
        for ids in held["input_ids"]  # a one-token text predicts nothing
    ]
    assert nll == pytest.approx(one_by_one, rel=1e-4)
    assert lm.perplexity(model, held, chat_tok) == pytest.approx(np.exp(sum(one_by_one) / tokens.sum()), rel=1e-4)
    one, _ = lm.query_losses(model, held.select([2]), chat_tok)
    assert one[0] == pytest.approx(nll[2], rel=1e-4)  # in order, and padding changes nothing


def _lm_scores(rate, rng):
    tokens = rng.integers(4, 30, size=150)
    nll = tokens * rng.gamma(4.0, rate / 4.0, size=150)  # loss per token varies from query to query
    return {"nll": nll, "tokens": tokens}


def test_perplexity_interval_follows_a_bootstrap_of_the_ratio():
    rng = np.random.default_rng(0)
    r = _lm_scores(3.0, rng)
    nll, tokens = r["nll"], r["tokens"]
    ppl = lm.perplexity_interval(nll, tokens)
    assert ppl.estimate == pytest.approx(np.exp(nll.sum() / tokens.sum())) and ppl.low < ppl.estimate < ppl.high
    idx = rng.integers(0, len(nll), size=(4000, len(nll)))  # resample whole queries: the ratio of the sums
    direct = np.exp(np.percentile(nll[idx].sum(1) / tokens[idx].sum(1), [2.5, 97.5]))
    assert ppl.low == pytest.approx(direct[0], rel=0.02) and ppl.high == pytest.approx(direct[1], rel=0.02)
    flat = lm.perplexity_interval(2.0 * tokens, tokens)  # the same loss per token everywhere
    assert flat.low == flat.high == pytest.approx(np.exp(2.0))


def test_perplexity_ratio_is_paired_and_needs_the_same_tokens():
    rng = np.random.default_rng(1)
    better = _lm_scores(3.0, rng)
    extra = better["tokens"] * rng.uniform(0.4, 0.6, size=150)  # about 0.5 nats more per token, on every query
    worse = {"nll": better["nll"] + extra, "tokens": better["tokens"]}
    ratio = lm.perplexity_ratio({"w": worse, "b": better}, worse="w", better="b")
    assert ratio.estimate == pytest.approx(np.exp(extra.sum() / better["tokens"].sum()))
    assert 1 < ratio.low < ratio.estimate < ratio.high < np.exp(0.6)  # paired: the query-to-query spread cancels
    alone = lm.perplexity_interval(better["nll"], better["tokens"])
    assert ratio.high / ratio.low < (alone.high / alone.low) ** 0.5  # far narrower than one model's own interval
    same = lm.perplexity_ratio({"w": better, "b": better}, worse="w", better="b")
    assert same.estimate == same.low == same.high == pytest.approx(1.0)
    noisy = {"nll": better["nll"] * rng.uniform(0.8, 1.2, size=150), "tokens": better["tokens"]}
    assert lm.perplexity_ratio({"w": noisy, "b": better}, "w", "b").low < 1  # no measurable difference
    with pytest.raises(ValueError, match="same tokens"):
        lm.perplexity_ratio({"w": {**worse, "tokens": worse["tokens"] + 1}, "b": better}, "w", "b")
