"""The grid explorer: headless detection, static small multiples, and a live widget that redraws."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import ipywidgets  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from helpers import runtime, widgets
from helpers.history import History  # noqa: E402
from helpers.lessons import overfitting  # noqa: E402


def fake_run(per_class: int, lr: float, dip_at: int = 4) -> dict:
    h = History()
    for step in range(1, 11):
        h.log_train(step, 0, 2.0 / step, lr, per_class)
        h.log_eval(step, {"eval_loss": 1.0 + abs(step - dip_at) * 0.1})
    h.best_step = dip_at
    return {
        "point": {"per_class": per_class, "learning_rate": lr, "epochs": 10, "rank": 4},
        "history": h.to_dict(),
        "val_accuracy": 0.5,
    }


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


def leaves(widget) -> list:
    """Every widget inside ``widget`` that has no children, in display order."""
    kids = getattr(widget, "children", ())
    return [leaf for kid in kids for leaf in leaves(kid)] if kids else [widget]


def shown(box) -> dict:
    """The explorer's output area: its single output (asserted), as nbformat's display_data or stream dict."""
    out = box.children[-1]
    assert len(out.outputs) == 1, out.outputs
    return out.outputs[0]


def profile_grid(name: str) -> dict:
    """The explorer's real grid for profile ``name`` (as overfitting.run_grid returns it), with fake histories."""
    points = overfitting.grid_for(runtime.profile(name)).points()
    return {
        overfitting.key(pt): dict(fake_run(pt["per_class"], pt["learning_rate"], dip_at=2 + i % 7), point=pt)
        for i, pt in enumerate(points)
    }


@pytest.mark.parametrize("name", runtime.PROFILES)
def test_explorer_redraws_for_every_slider_position_of_every_profile(name):
    """The live path a learner uses: build the explorer on the profile's grid, move every slider to every value."""
    results = profile_grid(name)
    options = widgets._options(results)
    box = widgets.explorer(results)  # the old explorer raised a TraitError here: a slider value of None (rank)
    controls = leaves(box)[:-1]
    sliders = [c for c in controls if isinstance(c, ipywidgets.SelectionSlider)]
    swept = [k for k, v in options.items() if len(v) > 1]
    assert [s.description for s in sliders] == [widgets.AXES[k] for k in swept]
    labels = [c.value for c in controls if isinstance(c, ipywidgets.HTML)]
    assert labels == [f"{widgets.AXES[k]}: <b>{widgets._fmt(options[k][0])}</b>" for k in options if k not in swept]
    first = {k: v[0] for k, v in options.items()}
    assert shown(box)["data"]["text/plain"].startswith(widgets._title(first))
    seen = {shown(box)["data"]["image/png"]}
    for k, slider in zip(swept, sliders):
        for i in [*range(1, len(options[k])), 0]:  # every value, then back to the first
            before = shown(box)["data"]["image/png"]
            slider.value = i
            choice = {**first, **{a: options[a][s.value] for a, s in zip(swept, sliders)}}
            data = shown(box)["data"]
            assert data["text/plain"].startswith(widgets._title(choice)), (data["text/plain"], choice)
            assert data["image/png"] != before, f"moving {slider.description} to {slider.label} did not redraw"
            seen.add(data["image/png"])
    assert len(seen) == 1 + sum(len(options[k]) - 1 for k in swept)  # one distinct plot per position visited
    assert name != "smoke" or "none (all weights)" in " ".join(labels)  # the rank that broke the old slider
    plt.close("all")


def test_explorer_says_so_when_a_combination_is_missing(results):
    del results["8-0.001"]
    box = widgets.explorer(results)
    per_class, lr = [c for c in leaves(box) if isinstance(c, ipywidgets.SelectionSlider)]
    per_class.value, lr.value = 1, 1
    assert shown(box) == {
        "output_type": "stream",
        "name": "stdout",
        "text": "That combination is not in the grid; move another slider.\n",
    }
    lr.value = 0
    assert "image/png" in shown(box)["data"]
    plt.close("all")


def test_full_fine_tuning_shows_as_a_named_rank():
    assert widgets._fmt(None) == "none (all weights)" and widgets._fmt(4) == "4"
    assert widgets._options(
        {
            "a": {"point": {"per_class": 3, "learning_rate": 1e-3, "epochs": 20, "rank": 4}},
            "b": {"point": {"per_class": 3, "learning_rate": 1e-3, "epochs": 20, "rank": None}},
        }
    )["rank"] == [None, 4]


def test_find_picks_the_matching_run(results):
    run = widgets._find(results, {"per_class": 8, "learning_rate": 1e-3, "epochs": 10, "rank": 4})
    assert run["point"]["per_class"] == 8 and run["point"]["learning_rate"] == 1e-3
    assert widgets._find(results, {"per_class": 5, "learning_rate": 1e-3, "epochs": 10, "rank": 4}) is None
