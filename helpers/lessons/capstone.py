"""The capstone support assistant for Northwind Bank: the fine-tuned intent classifier routes, retrieval
finds the policy, the brand-voice adapter writes the reply, and low confidence escalates to a human.

Built on ``shipping`` (classifier), ``knowledge`` and ``retrieval`` (policies), ``facts`` (fact and hallucination
scoring) and notebook 06's ``instruction_tuning`` (voice rules and data); ``helpers.chat`` trains the writer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import ipywidgets as widgets
import pandas as pd
from IPython.display import display

from helpers import knowledge, retrieval, shipping
from helpers.generation import generate
from helpers.lessons import instruction_tuning

ESCALATION_REPLY = (
    f"{instruction_tuning.GREETING}\nI understand this needs a closer look.\n"
    "Next step: a colleague from our support team will reply to you here within one working day.\n"
    f"{instruction_tuning.SIGN_OFF}"
)
FOLLOW_UP = "Next step: reply here if anything is still unclear."
VOICE_RULES = (
    f"Reply in four lines. Line 1 exactly: {instruction_tuning.GREETING} Line 2 starts with 'I understand' or "
    "\"I'm sorry\". Line 3 starts with 'Next step:' and says what the customer should do. "
    f"Line 4 exactly: {instruction_tuning.SIGN_OFF} Under {instruction_tuning.MAX_REPLY_WORDS} words, "
    "no exclamation marks."
)
PROMPT_ONLY_SYSTEM = (
    f"{instruction_tuning.VOICE_SYSTEM} {VOICE_RULES} State the exact amount, time or name the customer asks for."
)


def policy_system(article: knowledge.Article) -> str:
    """The system prompt of the assistant's writer: the voice instruction plus the policy to answer from."""
    return f"{instruction_tuning.VOICE_SYSTEM}\nPolicy: {knowledge.article_text(article)}"


def grounded_reply(article: knowledge.Article, answer: str) -> str:
    """A brand-voice reply that quotes the policy sentence stating ``answer`` (a training target)."""
    return (
        f"{instruction_tuning.GREETING}\nI understand. {knowledge.evidence_sentence(article, answer)}\n"
        f"{FOLLOW_UP}\n{instruction_tuning.SIGN_OFF}"
    )


def in_scope_articles(intents: Sequence[str], articles: Sequence[knowledge.Article]) -> set[str]:
    """Ids of the articles that answer at least one of ``intents``."""
    return {a["id"] for a in articles if set(a["intents"]) & set(intents)}


def training_conversations(intents: Sequence[str], articles: Sequence[knowledge.Article]) -> list[list[dict]]:
    """Adapter training chats: KB training questions with their policy in the prompt and a grounded voice reply,
    plus the brand-voice conversations for the same intents (voice without a policy)."""
    known, scope = knowledge.by_id(articles), in_scope_articles(intents, articles)
    grounded = [
        [
            {"role": "system", "content": policy_system(known[q["article_id"]])},
            {"role": "user", "content": q["question"]},
            {"role": "assistant", "content": grounded_reply(known[q["article_id"]], q["answer"])},
        ]
        for q in knowledge.load_qa("train")
        if q["article_id"] in scope
    ]
    voice = instruction_tuning.build_conversations(instruction_tuning.load_brand_voice("train", intents), ["voice"])
    return [c for pair in zip(grounded, voice) for c in pair] + grounded[len(voice) :] + voice[len(grounded) :]


def eval_messages(
    intents: Sequence[str], articles: Sequence[knowledge.Article], n: int | None, seed: int = 0
) -> list[dict]:
    """Held-out customer questions whose policy answers one of ``intents``, each with its gold intents."""
    known, scope = knowledge.by_id(articles), in_scope_articles(intents, articles)
    pool = [q for q in knowledge.load_qa("heldout") if q["article_id"] in scope]
    return [
        dict(q, gold_intents=[i for i in known[q["article_id"]]["intents"] if i in intents])
        for q in knowledge.sample_questions(pool, n, seed)
    ]


@dataclass
class Turn:
    """One message through the assistant: every stage's output and the time it took."""

    message: str
    intent: str
    confidence: float
    escalated: bool
    article_id: str | None
    retrieved: list[str] = field(default_factory=list)
    reply: str = ""
    seconds: float = 0.0


@dataclass
class Assistant:
    """Classifier + retrieval + voice writer, with a confidence threshold for escalation."""

    classifier: object
    classifier_tokenizer: object
    labels: list[str]
    max_length: int
    threshold: float
    index: retrieval.Index
    articles: list[dict]
    writer: object  # the chat model with the voice adapter (a peft model)
    writer_tokenizer: object
    max_new_tokens: int = 96

    def route(self, messages: Sequence[str]) -> list[Turn]:
        """Stages 1-2: intent and confidence, escalation, and the policy article chosen for each message."""
        preds = shipping.classify(
            messages, self.classifier, self.classifier_tokenizer, self.labels, self.max_length, self.threshold
        )
        hits = retrieval.search(self.index, messages, k=3)
        known, turns = knowledge.by_id(self.articles), []
        for pred, found in zip(preds, hits):
            ids = [h[0] for h in found]
            # The retriever proposes; the classifier's intent picks among its proposals.
            agree = [i for i in ids if pred.intent in known[i]["intents"]]
            article = (agree or ids)[0] if pred.confident else None
            turns.append(Turn(pred.text, pred.intent, pred.confidence, not pred.confident, article, ids))
        return turns

    def reply(self, messages: Sequence[str], batch_size: int = 8) -> list[Turn]:
        """Run every stage on ``messages``; escalated ones get the hand-over reply, the rest a generated one."""
        start = time.perf_counter()
        turns = self.route(list(messages))
        known = knowledge.by_id(self.articles)
        todo = [t for t in turns if not t.escalated]
        chats = [
            [{"role": "system", "content": policy_system(known[t.article_id])}, {"role": "user", "content": t.message}]
            for t in todo
        ]
        for turn, text in zip(
            todo, generate(self.writer, self.writer_tokenizer, chats, self.max_new_tokens, batch_size=batch_size)
        ):
            turn.reply = text
        for turn in turns:
            turn.reply = turn.reply or ESCALATION_REPLY
            turn.seconds = (time.perf_counter() - start) / len(turns)
        return turns


def baseline_turns(
    kind: str,
    questions: Sequence[dict],
    chat_model,
    tokenizer,
    index: retrieval.Index,
    articles: Sequence[dict],
    max_new_tokens: int = 96,
) -> list[Turn]:
    """One part alone: 'prompt-only' (base model, rules in the prompt), 'rag-only' (base model + the retriever's top
    policy, in the writer's own prompt: the assistant less classifier and adapter) or 'fine-tune-only' (the voice
    adapter, no policy)."""
    texts, known = [q["question"] for q in questions], knowledge.by_id(articles)
    top = [h[0][0] for h in retrieval.search(index, texts, k=1)] if kind == "rag-only" else [None] * len(texts)
    chats = {
        "prompt-only": lambda t, a: [{"role": "system", "content": PROMPT_ONLY_SYSTEM}, {"role": "user", "content": t}],
        "rag-only": lambda t, a: [
            {"role": "system", "content": policy_system(known[a])},
            {"role": "user", "content": t},
        ],
        "fine-tune-only": lambda t, a: instruction_tuning.conversation({"message": t}, "voice", with_answer=False),
    }
    if kind not in chats:
        raise ValueError(f"kind must be one of {', '.join(chats)}, not {kind!r}.")
    start = time.perf_counter()
    if kind == "fine-tune-only":
        replies = generate(chat_model, tokenizer, [chats[kind](t, a) for t, a in zip(texts, top)], max_new_tokens)
    else:
        with chat_model.disable_adapter():  # the same weights without the adapter: the base model
            replies = generate(chat_model, tokenizer, [chats[kind](t, a) for t, a in zip(texts, top)], max_new_tokens)
    seconds = (time.perf_counter() - start) / max(1, len(texts))
    return [Turn(t, "", 0.0, False, a, [], r, seconds) for t, a, r in zip(texts, top, replies)]


def stages(turn: Turn, articles: Sequence[dict]) -> pd.DataFrame:
    """A readable table of what each stage did for one message."""
    known = knowledge.by_id(articles)
    chosen = known[turn.article_id]["title"] if turn.article_id else "(none: escalated)"
    return pd.DataFrame(
        {
            "stage": ["1. classifier", "2. escalate?", "3. retrieval (top 3)", "4. policy used", "5. voice writer"],
            "output": [
                f"{turn.intent} (confidence {turn.confidence:.2f})",
                "yes: a human takes over" if turn.escalated else "no: answer automatically",
                ", ".join(f"{i} {known[i]['title']}" for i in turn.retrieved),
                chosen,
                turn.reply,
            ],
        }
    )


def demo_box(assistant: Assistant, example: str = ""):
    """An ipywidgets box: type a customer message, press Send, and see every stage's output."""
    text = widgets.Text(value=example, placeholder="Type a customer message", layout=widgets.Layout(width="70%"))
    button, out = widgets.Button(description="Send", button_style="primary"), widgets.Output()

    def on_send(_=None):
        out.clear_output()
        with out:
            if not text.value.strip():
                print("Type a message first.")
                return
            display(instruction_tuning.show_table(stages(assistant.reply([text.value])[0], assistant.articles)))

    button.on_click(on_send)
    return widgets.VBox([widgets.HBox([text, button]), out])
