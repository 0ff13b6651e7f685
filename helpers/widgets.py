"""An ipywidgets explorer that redraws learning curves from a cached grid of runs (no training on change).

In a live notebook it shows sliders; in a headless run (nbconvert/nbclient, CI)
widgets cannot be drawn, so it shows a static grid of the same curves instead.
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Mapping
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import display

from helpers.history import History

AXES = {"per_class": "examples / intent", "learning_rate": "learning rate", "epochs": "epochs", "rank": "LoRA rank"}
# Variables a live Jupyter front end sets in the kernel's environment (JupyterLab/Notebook 7, VS Code, Colab).
_LIVE_MARKERS = ("JPY_SESSION_NAME", "VSCODE_PID", "VSCODE_CWD", "COLAB_RELEASE_TAG", "PYCHARM_HOSTED")


def is_headless() -> bool:
    """True when no live front end can draw widgets; $WORKBOOK_STATIC_WIDGETS=1/0 forces the answer."""
    forced = os.environ.get("WORKBOOK_STATIC_WIDGETS")
    if forced is not None:
        return forced.lower() in ("1", "true", "yes", "on")
    return not any(marker in os.environ for marker in _LIVE_MARKERS)


def plot_curves(history: History, ax=None, title: str | None = None, smooth: int = 3):
    """Training and validation loss of one run, with the validation minimum marked; returns the axes."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
    history.plot(ax=ax, title=title, smooth=smooth)
    if history.evals:
        best = history.best()
        ax.scatter(
            [best["step"]],
            [best["eval_loss"]],
            s=90,
            facecolors="none",
            edgecolors="tab:red",
            zorder=5,
            label=f"validation minimum (step {best['step']})",
        )
        ax.legend(fontsize=8)
    return ax


def _title(point: Mapping[str, Any], val_accuracy: float | None = None) -> str:
    parts = [f"{AXES[k]} {_fmt(point[k])}" for k in AXES]
    acc = f"  ·  val acc {val_accuracy:.0%}" if val_accuracy is not None else ""
    return ", ".join(parts) + acc


def _fmt(value: Any) -> str:
    return "none (all weights)" if value is None else f"{value:g}"


def _options(results: Mapping[str, dict]) -> dict[str, list]:
    points = [r["point"] for r in results.values()]
    return {k: sorted({p[k] for p in points}, key=lambda v: (v is not None, v or 0)) for k in AXES}


def _find(results: Mapping[str, dict], choice: Mapping[str, Any]) -> dict | None:
    return next((r for r in results.values() if all(r["point"][k] == choice[k] for k in AXES)), None)


def static_grid(results: Mapping[str, dict], max_panels: int = 12):
    """Small multiples: one panel of curves per grid run (first ``max_panels``); returns the figure."""
    runs = list(results.values())[:max_panels]
    if not runs:
        raise ValueError("The grid is empty: run the grid cell first.")
    cols = min(3, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False, sharey=True)
    for ax, run in zip(axes.flat, runs):
        plot_curves(History.from_dict(run["history"]), ax=ax, title=_title(run["point"], run.get("val_accuracy")))
        ax.title.set_fontsize(8)
        ax.legend().set_visible(False)
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    fig.suptitle("Every run of the explorer's grid: training (blue) and validation (orange) loss")
    fig.tight_layout()
    return fig


def _output_for(results: Mapping[str, dict], choice: Mapping[str, Any]) -> dict:
    """The explorer's output for one choice of axis values: a PNG of that run's curves, or a note if it is absent."""
    run = _find(results, choice)
    if run is None:
        return {
            "output_type": "stream",
            "name": "stdout",
            "text": "That combination is not in the grid; move another slider.\n",
        }
    title = _title(choice, run.get("val_accuracy"))
    ax = plot_curves(History.from_dict(run["history"]), title=title)
    png = io.BytesIO()
    ax.figure.savefig(png, format="png", bbox_inches="tight")
    plt.close(ax.figure)  # drawn once, as this PNG: not again by the inline backend at the end of the cell
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {"image/png": base64.b64encode(png.getvalue()).decode("ascii"), "text/plain": title},
    }


def explorer(results: Mapping[str, dict]):
    """A widget: a slider per grid axis with several values (else a label); a move redraws from ``results``."""
    options = _options(results)
    # A slider's values are positions in options[k], never the grid values: a full fine-tune's rank is None,
    # and ipywidgets reads a value of None as "nothing selected" and raises a TraitError.
    sliders = {
        k: w.SelectionSlider(
            options=[(_fmt(x), i) for i, x in enumerate(v)],
            value=0,
            description=AXES[k],
            style={"description_width": "120px"},
            continuous_update=False,
        )
        for k, v in options.items()
        if len(v) > 1
    }
    controls = [
        sliders[k] if k in sliders else w.HTML(f"{AXES[k]}: <b>{_fmt(v[0])}</b>", layout=w.Layout(margin="0 2em 0 1em"))
        for k, v in options.items()
    ]
    out = w.Output()

    def redraw(_=None) -> None:
        choice = {k: v[sliders[k].value] if k in sliders else v[0] for k, v in options.items()}
        out.outputs = (_output_for(results, choice),)  # one update: the old plot is replaced, never blanked

    for s in sliders.values():
        s.observe(redraw, names="value")
    redraw()
    return w.VBox([w.HBox(controls[:2]), w.HBox(controls[2:]), out])


def show_explorer(results: Mapping[str, dict]) -> None:
    """Display the live explorer, or (headless) the static grid of the same runs."""
    if is_headless():
        fig = static_grid(results)
        display(fig)
        plt.close(fig)
    else:
        display(explorer(results))
