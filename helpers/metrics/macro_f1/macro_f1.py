"""Macro-F1: the F1 score of each class, averaged with equal weight per class."""

import datasets
import evaluate
from sklearn.metrics import f1_score


class MacroF1(evaluate.Metric):
    """Unweighted mean of per-class F1, so rare classes count as much as common ones."""

    def _info(self):
        return evaluate.MetricInfo(
            description="F1 per class, averaged with equal weight per class.",
            citation="",
            inputs_description="predictions, references: lists of integer labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"macro_f1": float(f1_score(references, predictions, average="macro", zero_division=0))}
