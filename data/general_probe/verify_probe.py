"""Re-check the probe: ask SmolLM2-135M-Instruct every question in questions.jsonl and report its score.

Run from the repository root: python data/general_probe/verify_probe.py
The base model should answer (nearly) all of them; questions it misses were dropped when the probe was made.
"""

from helpers import forgetting, models

if __name__ == "__main__":
    model, tokenizer = models.load_chat_model()
    probe = forgetting.load_probe()
    accuracy, replies = forgetting.probe_accuracy(model, tokenizer, probe)
    for question, reply in zip(probe, replies):
        mark = "OK" if forgetting.matches(reply, question["answers"]) else "--"
        print(f"{mark} {question['question']} -> {reply[:90]!r}")
    print(f"{accuracy:.0%} of {len(probe)} questions answered correctly")
