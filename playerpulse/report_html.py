"""Self-contained HTML reports: figures drawn with matplotlib, embedded as PNG data URIs.

A report is one file that opens anywhere (a browser, a CI artifact, an e-mail attachment)
with nothing to fetch: no scripts, no stylesheets, no image files beside it. Each figure is
also listed with the numbers it was drawn from, so the suite can check a report against its
data and a reader can copy the figures.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.breach { color: #b00020; font-weight: 600; } .ok { color: #1b5e20; }
img { max-width: 100%; border: 1px solid #eee; }
.empty { color: #777; font-style: italic; }
"""


@dataclass
class Section:
    title: str
    image: str | None = None
    """A PNG as a data URI, or ``None`` when there was nothing to draw."""
    table: tuple[Sequence[str], list[Sequence[Any]]] | None = None
    note: str | None = None


@dataclass
class Report:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)
    breaches: list[str] = field(default_factory=list)
    """One line per alert threshold the report's figures break (``--check``)."""

    def html(self) -> str:
        parts = [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1><p>{html.escape(self.subtitle)}</p>",
            "<h2>Alerts</h2>",
        ]
        if self.breaches:
            parts.append("<ul>" + "".join(f'<li class="breach">{html.escape(b)}</li>' for b in self.breaches) + "</ul>")
        else:
            parts.append('<p class="ok">No threshold is breached.</p>')
        for s in self.sections:
            parts.append(f"<h2>{html.escape(s.title)}</h2>")
            if s.note:
                parts.append(f"<p>{html.escape(s.note)}</p>")
            if s.image:
                parts.append(f'<img alt="{html.escape(s.title)}" src="{s.image}">')
            elif s.table is None:
                parts.append('<p class="empty">No data in this window.</p>')
            if s.table is not None:
                parts.append(_table(*s.table))
        parts.append("</body></html>")
        return "\n".join(parts)


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return html.escape(str(v))


def _table(header: Sequence[str], rows: list[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def figure(width: float = 10, height: float = 3.2, ncols: int = 1, nrows: int = 1):
    """A matplotlib figure on the Agg backend (no display needed) and its axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    return fig, [ax for row in axes for ax in row]


def png_data_uri(fig) -> str:
    """The figure as an inline PNG (and the figure closed)."""
    from matplotlib import pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
