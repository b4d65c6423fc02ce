"""The overview's plots, drawn on the server as SVG with matplotlib (its Agg
backend: no display, no browser script, no CDN) from foreman.stats' figures."""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828"}


def _svg(figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]  # without the XML prologue and doctype, to inline it


def finished_per_hour(series: list[dict]) -> str:
    """Stacked bars: jobs that ended in each hour, by state."""
    figure, axes = plt.subplots(figsize=(8, 2.6))
    hours = [datetime.fromisoformat(row["hour"]) for row in series]
    bottom = [0] * len(series)
    width = 1 / 24 * 0.9
    for state, colour in COLOURS.items():
        values = [row[state] for row in series]
        axes.bar(hours, values, width=width, bottom=bottom, color=colour, label=state,
                 align="edge")  # fmt: skip
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_title("Jobs finished per hour (UTC)")
    axes.set_ylabel("jobs")
    axes.legend(loc="upper left", fontsize="small")
    figure.autofmt_xdate()
    return _svg(figure)


def runtime_distribution(runtimes: dict[str, dict]) -> str:
    """A box plot of the processor jobs' runtimes per pipeline."""
    figure, axes = plt.subplots(figsize=(8, 0.6 + 0.5 * max(1, len(runtimes))))
    if runtimes:
        names = list(runtimes)
        axes.boxplot([runtimes[name]["seconds"] for name in names], orientation="horizontal")
        axes.set_yticks(range(1, len(names) + 1), names)
        axes.set_xlabel("seconds")
    else:
        axes.text(0.5, 0.5, "no processor job succeeded in this window", ha="center")
        axes.set_axis_off()
    axes.set_title("Runtime per pipeline (succeeded processor jobs)")
    return _svg(figure)
