"""HTML reports of a chaos run: the summary, and what clients saw over time with the faults drawn in.

Two plots (PNG through matplotlib, embedded in one self-contained HTML file):

* latency of every operation against the time it was invoked, log scale,
  coloured by outcome (ok / fail / info), so a failover or a partition shows
  as a band of errors and slow requests;
* throughput per half second, split into served and not served.

Each fault of the schedule is a shaded band from its start to its heal, so
the eye can match cause and effect. Times are seconds since the workload
started, on the same monotonic clock the history uses.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

__all__ = ["render_html", "write_report"]

_COLOURS = {"ok": "#2e7d32", "fail": "#c62828", "info": "#ef6c00"}


def _plots(ops, t0_ns: int, fault_bands: list[tuple[float, float, str]]) -> list[tuple[str, bytes]]:
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to PNG
    import matplotlib.pyplot as plt

    images = []
    workload = [op for op in ops if not str(op.process).startswith("final")]
    end = max([((op.complete or op.invoke) - t0_ns) / 1e9 for op in workload] + [1.0])

    fig, ax = plt.subplots(figsize=(10, 3.6), dpi=100)
    for outcome, colour in _COLOURS.items():
        xs = [(op.invoke - t0_ns) / 1e9 for op in workload if op.outcome == outcome and op.complete is not None]
        ys = [max((op.complete - op.invoke) / 1e6, 0.01) for op in workload
              if op.outcome == outcome and op.complete is not None]
        if xs:
            ax.scatter(xs, ys, s=2, c=colour, label=f"{outcome} ({len(xs)})", alpha=0.6, linewidths=0)
    _bands(ax, fault_bands)
    ax.set_yscale("log")
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds since the workload started")
    ax.set_ylabel("latency (ms)")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title("Latency of every operation")
    images.append(("latency", _png(fig, plt)))

    width = 0.5
    bins = int(end / width) + 1
    served = [0] * bins
    refused = [0] * bins
    for op in workload:
        index = min(bins - 1, int(((op.complete or op.invoke) - t0_ns) / 1e9 / width))
        if op.outcome == "ok":
            served[index] += 1
        else:
            refused[index] += 1
    xs = [i * width for i in range(bins)]
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    ax.plot(xs, [n / width for n in served], color=_COLOURS["ok"], label="ok ops/s")
    ax.plot(xs, [n / width for n in refused], color=_COLOURS["fail"], label="fail + info ops/s")
    _bands(ax, fault_bands)
    ax.set_xlim(0, end)
    ax.set_xlabel("seconds since the workload started")
    ax.set_ylabel("operations per second")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Throughput")
    images.append(("throughput", _png(fig, plt)))
    return images


def _bands(ax, fault_bands) -> None:
    for start, end, label in fault_bands:
        ax.axvspan(start, end, color="#9e9e9e", alpha=0.25, linewidth=0)
        ax.text(start, 1.0, label, transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="#424242")


def _png(fig, plt) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def render_html(summary, ops, t0_ns: int, fault_bands: list[tuple[float, float, str]]) -> str:
    """One self-contained page: the text summary, the plots, and the nemesis log."""
    images = _plots(ops, t0_ns, fault_bands)
    title = f"{summary.scenario} on {summary.engine} (seed {summary.seed})"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1040px;margin:2em auto;color:#212121}"
        "pre{background:#f5f5f5;padding:1em;overflow-x:auto;font-size:13px}"
        ".verdict{font-size:1.3em;font-weight:bold}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='verdict'>judgement: {html.escape(summary.judgement)} &middot; lost acknowledged writes: "
        f"{html.escape(str(summary.lost_acknowledged))} &middot; availability: "
        f"{'-' if summary.availability is None else f'{summary.availability:.1%}'}</p>",
    ]
    for name, png in images:
        data = base64.b64encode(png).decode()
        parts.append(f"<h2>{name.title()}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    parts.append("<h2>Summary</h2><pre>" + html.escape(summary.to_text()) + "</pre>")
    if summary.nemesis_log:
        parts.append("<h2>Nemesis log</h2><pre>" + html.escape("\n".join(summary.nemesis_log)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(directory: str | Path, summary, ops, t0_ns: int, fault_bands) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{summary.scenario}-{summary.engine}-seed{summary.seed}.html"
    path.write_text(render_html(summary, ops, t0_ns, fault_bands), encoding="utf-8")
    return path
