"""The overview's plots, drawn on the server as SVG with matplotlib (its Agg
backend: no display, no browser script, no CDN) from foreman.stats' figures."""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache

COLOURS = {"succeeded": "#2e7d32", "failed": "#c62828"}


@cache
def pyplot():
    """matplotlib, loaded when a plot is first drawn: loading it costs most of a
    `manage.py` process's start, and most processes draw nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _svg(figure) -> str:
    plt = pyplot()
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = out.getvalue()
    return text[text.index("<svg") :]  # without the XML prologue and doctype, to inline it


def finished_per_hour(series: list[dict]) -> str:
    """Stacked bars: jobs that ended in each hour, by state."""
    plt = pyplot()
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
    plt = pyplot()
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


RUN_STATE_COLOURS = {
    "sequencing": "#9e9e9e", "complete": "#6d4c41", "archiving": "#1565c0",
    "archived": "#00838f", "demultiplexing": "#1e88e5", "demultiplexed": "#2e7d32",
    "basecalling": "#1e88e5", "basecalled": "#2e7d32", "failed": "#c62828",
}  # fmt: skip


def runs_by_state(runs: dict[str, dict[str, int]]) -> str:
    """Horizontal stacked bars: each platform's runs by state."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 1.4 + 0.4 * len(runs)))
    platforms = list(runs)
    if not any(sum(states.values()) for states in runs.values()):
        axes.text(0.5, 0.5, "no sequencing run recorded yet", ha="center")
        axes.set_axis_off()
    else:
        left = [0] * len(platforms)
        for state, colour in RUN_STATE_COLOURS.items():
            values = [runs[p].get(state, 0) for p in platforms]
            if any(values):
                axes.barh(platforms, values, left=left, color=colour, label=state)
                left = [a + b for a, b in zip(left, values, strict=True)]
        axes.set_xlabel("runs")
        axes.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    axes.set_title("Sequencing runs by state")
    return _svg(figure)


def reads_per_sample(stats: list) -> str:
    """Horizontal bars: each lane and sample's reads (Undetermined in grey)."""
    labels = [f"L{row.lane} {row.sample_id}" for row in stats]
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 0.8 + 0.28 * max(1, len(stats))))
    colours = ["#9e9e9e" if row.sample_id == "Undetermined" else "#1565c0" for row in stats]
    axes.barh(labels, [row.reads for row in stats], color=colours)
    axes.invert_yaxis()
    axes.set_xlabel("reads")
    axes.set_title("Reads per sample")
    return _svg(figure)
