"""Calibration: reliability bins, ECE and the answer-or-escalate threshold curve, on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import calibration


def test_softmax_rows_sum_to_one_and_temperature_flattens():
    logits = np.array([[2.0, 0.0, -1.0], [1000.0, 0.0, 0.0]])
    p = calibration.softmax(logits)
    assert np.allclose(p.sum(axis=1), 1) and np.isfinite(p).all()
    assert calibration.softmax(logits, temperature=4.0)[0].max() < p[0].max()
    assert np.allclose(calibration.softmax(logits, temperature=2.0), calibration.softmax(logits / 2))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        calibration.softmax(logits, temperature=0)


def test_reliability_bins_and_ece_exact():
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, False, True, True])
    bins = calibration.reliability_bins(conf, correct, n_bins=10)
    assert bins["count"].sum() == 4 and len(bins) == 10
    top = bins.iloc[9]
    assert top["count"] == 2 and top["accuracy"] == 0.5 and top["mean_confidence"] == pytest.approx(0.95)
    # ECE = 0.5 * |0.5 - 0.95| + 0.5 * |1.0 - 0.55| = 0.45
    assert calibration.expected_calibration_error(conf, correct) == pytest.approx(0.45)
    # Bins weigh by their counts: 3 at 0.95 (1 right), 1 at 0.55 (right) -> 0.75 * |1/3 - 0.95| + 0.25 * 0.45 = 0.575
    uneven = calibration.expected_calibration_error(
        np.array([0.95, 0.95, 0.95, 0.55]), np.array([True, False, False, True])
    )
    assert uneven == pytest.approx(0.575)


def test_perfectly_calibrated_has_zero_ece():
    conf = np.full(10, 0.7)
    correct = np.array([True] * 7 + [False] * 3)
    assert calibration.expected_calibration_error(conf, correct) == pytest.approx(0.0)


def test_threshold_curve_monotone_and_pick():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.2, 1.0, 500)
    correct = rng.uniform(size=500) < conf  # higher confidence, more often right
    curve = calibration.threshold_curve(conf, correct)
    assert calibration.coverage_is_monotone(curve)
    assert curve.iloc[0]["coverage"] == 1.0 and curve.iloc[0]["accuracy"] == pytest.approx(correct.mean())
    t = calibration.pick_threshold(curve, target_accuracy=0.9)
    at = calibration.at_threshold(conf, correct, t)
    assert at["accuracy"] >= 0.9 and at["escalated"] == pytest.approx(1 - at["coverage"])
    assert not calibration.coverage_is_monotone(curve.assign(coverage=curve["coverage"][::-1].to_numpy()))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="probabilities"):
        calibration.reliability_bins(np.array([2.0, 3.0]), np.array([True, False]))
    with pytest.raises(ValueError, match="same non-zero length"):
        calibration.threshold_curve(np.array([0.5]), np.array([True, False]))
