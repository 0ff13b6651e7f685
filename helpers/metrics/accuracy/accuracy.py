"""Accuracy: the share of predictions equal to the reference label."""

import datasets
import evaluate
import numpy as np


class Accuracy(evaluate.Metric):
    """Fraction of exact matches between predictions and references."""

    def _info(self):
        return evaluate.MetricInfo(
            description="Share of predictions that equal their reference label.",
            citation="",
            inputs_description="predictions, references: lists of integer labels",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        return {"accuracy": float(np.mean(np.asarray(predictions) == np.asarray(references)))}
