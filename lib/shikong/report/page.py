"""The report page: one self-contained HTML file (plotly.js inlined once, no CDN).

Every section names the tables its figure is drawn from, with the run that wrote each and
its Delta version, so a reader can trace any number back to a table.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

#: The ``class`` of each figure's container, by kind (the browser test counts them).
MAP, CHART = "sk-map", "sk-chart"


@dataclass(frozen=True)
class Source:
    """A table a figure is drawn from.

    Attributes:
        table: Qualified name (``gold.hotspots``).
        run_id: The run of the stage that last wrote it (``None``: not in the run log).
        version: Its Delta version read.
    """

    table: str
    run_id: str | None
    version: int | None

    def describe(self) -> str:
        """``gold.hotspots (run 2026..., Delta version 3)``."""
        run = self.run_id or "run unknown"
        ver = "" if self.version is None else f", Delta version {self.version}"
        return f"{self.table} (run {run}{ver})" if self.run_id else f"{self.table} ({run}{ver})"


@dataclass(frozen=True)
class Section:
    """One figure of the report, or why there is none.

    Attributes:
        key: Anchor and element id (``hotspots``).
        title: Heading.
        kind: :data:`MAP` or :data:`CHART`.
        sources: The tables the figure reads.
        figure: The figure; ``None`` when there is nothing to draw (``empty`` says why).
        note: A sentence under the heading (how to read the figure).
        empty: Why there is no figure.
    """

    key: str
    title: str
    kind: str
    sources: Sequence[Source]
    figure: go.Figure | None = None
    note: str = ""
    empty: str = ""


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1280px; padding: 0 24px;
       color: #212121; }
header { border-bottom: 1px solid #e0e0e0; margin-bottom: 16px; }
nav a { margin-right: 12px; }
section { margin: 28px 0 40px; }
p.source { color: #616161; font-size: 0.85em; }
p.empty { color: #b71c1c; }
"""


def render(sections: Sequence[Section], *, title: str, run_id: str, lakehouse: str) -> str:
    """The whole page as one HTML string."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        # Inlined, so the page opens without a network.
        f'<script type="text/javascript">{get_plotlyjs()}</script>',
        "</head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        f"<p>Report run <code>{html.escape(run_id)}</code>, generated {generated}, "
        f"from the published tables of <code>{html.escape(lakehouse)}</code>.</p>",
        f"<nav>{nav}</nav></header>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>')
        if s.note:
            parts.append(f"<p>{html.escape(s.note)}</p>")
        sources = "; ".join(src.describe() for src in s.sources)
        parts.append(f'<p class="source">Source: {html.escape(sources)}</p>')
        if s.figure is None:
            parts.append(f'<p class="empty">{html.escape(s.empty or "no data")}</p>')
        else:
            div = pio.to_html(
                s.figure,
                include_plotlyjs=False,
                full_html=False,
                div_id=f"fig-{s.key}",
                config={"displaylogo": False, "responsive": True},
            )
            parts.append(f'<div class="{s.kind}" data-section="{s.key}">{div}</div>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
