import pytest
import torch

from helpers import lm


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
