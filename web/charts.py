"""The leaderboard as an inline SVG drawn on the server: a point per model, its 95 % interval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 640
ROW = 34
LEFT = 170
RIGHT = 30
TOP = 28


@dataclass
class Bar:
    label: str
    y: float
    x: float
    low: float
    high: float
    rating: float
    interval: tuple[float, float]


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]
    axis_y: float
    left: int
    right: int


def _nice_step(span: float) -> float:
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        if span / step <= 6:
            return float(step)
    return 2000.0


def leaderboard_chart(ranking: list[dict[str, Any]]) -> Chart | None:
    """Geometry for the template: ratings and their intervals on one shared axis."""
    # Model versions with no judgments yet have no rating or interval to draw.
    ranking = [row for row in ranking if row.get("rating_ci95") and row.get("rating") is not None]
    if not ranking:
        return None
    lows = [row["rating_ci95"][0] for row in ranking]
    highs = [row["rating_ci95"][1] for row in ranking]
    low, high = min(lows), max(highs)
    if high - low < 1:
        low, high = low - 10, high + 10
    step = _nice_step(high - low)
    low = step * (low // step)
    high = step * -(-high // step)
    scale = (WIDTH - LEFT - RIGHT) / (high - low)

    def x(value: float) -> float:
        return round(LEFT + (value - low) * scale, 1)

    bars = [
        Bar(
            label=row["model_version"],
            y=TOP + i * ROW + ROW / 2,
            x=x(row["rating"]),
            low=x(row["rating_ci95"][0]),
            high=x(row["rating_ci95"][1]),
            rating=row["rating"],
            interval=(row["rating_ci95"][0], row["rating_ci95"][1]),
        )
        for i, row in enumerate(ranking)
    ]
    ticks = []
    value = low
    while value <= high + 1e-9:
        ticks.append((x(value), f"{value:g}"))
        value += step
    height = TOP + len(ranking) * ROW + 30
    return Chart(WIDTH, height, bars, ticks, TOP + len(ranking) * ROW, LEFT, WIDTH - RIGHT)
