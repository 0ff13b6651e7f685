from helpers import generation
from tests.tiny import tiny_causal_lm, tokenizer


class _Tok:
    """Just enough of a chat tokenizer around the MiniLM vocabulary to drive generate()."""

    def __init__(self):
        self.inner = tokenizer()
        self.padding_side = "right"
        self.pad_token_id = self.inner.pad_token_id

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        return " ".join(m["content"] for m in messages) + " answer :"

    def __call__(self, texts, **kwargs):
        self.inner.padding_side = self.padding_side
        return self.inner(texts, return_token_type_ids=False, **kwargs)  # a decoder takes no segment ids

    def pad(self, features, **kwargs):
        self.inner.padding_side = self.padding_side
        return self.inner.pad(features, **kwargs)

    def batch_decode(self, ids, skip_special_tokens):
        return self.inner.batch_decode(ids, skip_special_tokens=skip_special_tokens)


def test_user_message_with_and_without_system():
    assert generation.user_message("hi") == [{"role": "user", "content": "hi"}]
    assert generation.user_message("hi", system="be brief")[0] == {"role": "system", "content": "be brief"}


def test_generate_is_batched_ordered_and_restores_padding_side():
    tok = _Tok()
    model = tiny_causal_lm(tok.inner.vocab_size)
    convs = [generation.user_message(t) for t in ["where is my card", "fee", "a much longer question about my card"]]
    one_by_one = [generation.generate(model, tok, [c], max_new_tokens=5)[0] for c in convs]
    batched = generation.generate(model, tok, convs, max_new_tokens=5, batch_size=2)
    assert batched == one_by_one  # left padding makes batching invisible to greedy decoding
    assert tok.padding_side == "right"
    assert model.training  # restored


def test_prompts_of_similar_length_share_a_batch_and_replies_keep_input_order():
    tok = _Tok()
    model = tiny_causal_lm(tok.inner.vocab_size)
    texts = ["a much longer question about my card", "fee", "another much longer question about my fee", "card"]
    convs = [generation.user_message(t) for t in texts]
    masks, generate = [], model.generate
    model.generate = lambda **kw: masks.append(kw["attention_mask"]) or generate(**kw)
    batched = generation.generate(model, tok, convs, max_new_tokens=3, batch_size=2)
    assert batched == [generation.generate(model, tok, [c], max_new_tokens=3)[0] for c in convs]
    padding = sum(int((m == 0).sum()) for m in masks[:2])  # the first two calls are the batched run's
    assert padding <= 2, f"{padding} padding tokens: the short prompts were not batched together"
