"""The parts every report.html is made of: the page with its inline style, tables, figures as data: URIs."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

STYLE = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1b1f24}h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;border-bottom:1px solid #eee;
text-align:right}th{background:#f5f6f8}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9rem}.best{background:#e8f5e9;font-weight:600}.bad{color:#a33}
img{max-width:100%}.kpi{display:inline-block;margin:0 1.5rem .8rem 0}.kpi b{display:block;font-size:1.4rem}
"""
# what the plan report adds (the run and sweep reports keep STYLE alone, byte for byte)
PLAN_STYLE = """body{max-width:80rem}
.verdict{border-left:5px solid #2e7d32;background:#f3f9f3;padding:.6rem 1rem;margin:1rem 0}
.verdict.none{border-color:#a33;background:#fbf1f1}.verdict p{margin:.4rem 0}
details{margin:.3rem 0}summary{cursor:pointer}th{vertical-align:bottom}
table.text td,table.text th{text-align:left}
td{white-space:nowrap}td:first-child,table.text td{white-space:normal}
.scroll{overflow-x:auto}.scroll>table{width:100%;font-size:.93rem}.scroll td,.scroll th{padding:.25rem .4rem}
.nw{white-space:nowrap}.wrap{white-space:normal}
"""


def esc(x) -> str:
    return html.escape(str(x))


def num(x, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        text = f"{x:,.4g}" if abs(x) < 1e3 else f"{x:,.0f}"
    else:
        text = f"{x:,}" if isinstance(x, int) else str(x)
    return f"{text} {unit}".strip()


def png(path_or_fig, alt: str = "figure") -> str:
    if isinstance(path_or_fig, Path):
        data = path_or_fig.read_bytes()
    else:
        buf = io.BytesIO()
        path_or_fig.savefig(buf, format="png", dpi=100)
        data = buf.getvalue()
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def page(title: str, body: list[str], style: str = "") -> str:
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{esc(title)}</title>"
            f"<style>{STYLE}{style}</style></head><body><h1>{esc(title)}</h1>" + "\n".join(body) + "</body></html>\n")


def table(header: list[str], rows: list[list], marks: list[str] | None = None, cls: str = "") -> str:
    """Heads and cells that start with "<" are HTML already; the others are escaped. `cls`: the table's class."""
    head = f'<table class="{cls}">' if cls else "<table>"
    out = [head + "<tr>" + "".join(f"<th>{h if str(h).startswith('<') else esc(h)}</th>" for h in header) + "</tr>"]
    for i, r in enumerate(rows):
        mark = f' class="{marks[i]}"' if marks and marks[i] else ""
        out.append(f"<tr{mark}>" + "".join(f"<td>{c if str(c).startswith('<') else esc(c)}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def kpis(items: list[tuple[str, str]]) -> str:
    return "<div>" + "".join(f'<span class="kpi">{esc(k)}<b>{esc(v)}</b></span>' for k, v in items) + "</div>"
