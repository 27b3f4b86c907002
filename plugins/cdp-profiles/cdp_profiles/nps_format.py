"""How NPS figures read in the report and the terminal: points, shares, intervals, colours."""

from __future__ import annotations

from typing import Any

from cdp_profiles.nps import NpsFigure

COLOURS = {
    "promoter": "#1a9850",
    "passive": "#b8bcc4",
    "detractor": "#d73027",
    "line": "#2c5aa0",
    "band": "#2c5aa0",
    "smooth": "#e08214",
}


def points(value: float | None, signed: bool = True) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f}" if signed and round(value, 1) != 0 else f"{value:.1f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} %"


def interval_of(figure: NpsFigure) -> tuple[float, float] | None:
    """The 95 % interval in points: the figure's own (``interval``) when it has one, else NPS ± margin of error."""
    own: Any = getattr(figure, "interval", None)
    if own is not None:
        return float(own[0]), float(own[1])
    if figure.nps is None:
        return None
    moe = figure.margin_of_error or 0.0
    return max(-100.0, figure.nps - moe), min(100.0, figure.nps + moe)


def interval_text(figure: NpsFigure) -> str:
    span = interval_of(figure)
    return "–" if span is None else f"{points(span[0])} to {points(span[1])}"
