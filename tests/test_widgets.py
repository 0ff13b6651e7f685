"""The grid explorer: headless detection, static small multiples, and a live widget that redraws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers import widgets  # noqa: E402
from helpers.history import History  # noqa: E402


def fake_run(per_class: int, lr: float, dip_at: int = 4) -> dict:
    h = History()
    for step in range(1, 11):
        h.log_train(step, 0, 2.0 / step, lr, per_class)
        h.log_eval(step, {"eval_loss": 1.0 + abs(step - dip_at) * 0.1})
    h.best_step = dip_at
    return {"point": {"per_class": per_class, "learning_rate": lr, "epochs": 10, "rank": 4},
            "history": h.to_dict(), "test_accuracy": 0.5}


@pytest.fixture
def results():
    return {f"{n}-{lr}": fake_run(n, lr) for n in (3, 8) for lr in (1e-4, 1e-3)}


def test_headless_can_be_forced(monkeypatch):
    monkeypatch.setenv("WORKBOOK_STATIC_WIDGETS", "1")
    assert widgets.is_headless()
    monkeypatch.setenv("WORKBOOK_STATIC_WIDGETS", "0")
    assert not widgets.is_headless()


def test_live_front_end_is_detected(monkeypatch):
    monkeypatch.delenv("WORKBOOK_STATIC_WIDGETS", raising=False)
    for marker in widgets._LIVE_MARKERS:
        monkeypatch.delenv(marker, raising=False)
    assert widgets.is_headless()
    monkeypatch.setenv("JPY_SESSION_NAME", "05_overfitting_and_forgetting.ipynb")
    assert not widgets.is_headless()


def test_static_grid_has_one_panel_per_run(results):
    fig = widgets.static_grid(results)
    assert sum(ax.get_visible() for ax in fig.axes) == 4
    plt.close(fig)


def test_static_grid_refuses_empty_grid():
    with pytest.raises(ValueError, match="empty"):
        widgets.static_grid({})


def test_plot_curves_marks_validation_minimum(results):
    ax = widgets.plot_curves(History.from_dict(results["3-0.0001"]["history"]))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("validation minimum (step 4)" in t for t in labels)
    plt.close(ax.figure)


def test_explorer_has_a_slider_per_axis_and_redraws(results):
    box = widgets.explorer(results)
    sliders = [s for row in box.children[:2] for s in row.children]
    assert [s.description for s in sliders] == list(widgets.AXES.values())
    assert list(sliders[0].options) == [("3", 3), ("8", 8)]  # (label, value)
    out = box.children[2]
    sliders[0].value = 8  # triggers a redraw from the cached histories
    assert sliders[0].value == 8 and out is box.children[2]
    plt.close("all")


def test_full_fine_tuning_shows_as_a_named_rank():
    assert widgets._fmt(None) == "none (all weights)" and widgets._fmt(4) == "4"
    assert widgets._options({"a": {"point": {"per_class": 3, "learning_rate": 1e-3, "epochs": 20, "rank": 4}},
                             "b": {"point": {"per_class": 3, "learning_rate": 1e-3, "epochs": 20, "rank": None}}}
                            )["rank"] == [None, 4]


def test_find_picks_the_matching_run(results):
    run = widgets._find(results, {"per_class": 8, "learning_rate": 1e-3, "epochs": 10, "rank": 4})
    assert run["point"]["per_class"] == 8 and run["point"]["learning_rate"] == 1e-3
    assert widgets._find(results, {"per_class": 5, "learning_rate": 1e-3, "epochs": 10, "rank": 4}) is None
