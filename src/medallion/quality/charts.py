"""Geometry for the report's inline SVG charts; the template draws them (and escapes every label).

Nothing here knows HTML: each function turns numbers into positioned shapes and text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    label: str
    label_x: float
    title: str


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    css: str = ""


@dataclass
class Chart:
    width: int
    height: int
    title: str
    bars: list[Bar] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[tuple[float, float, float, float, str]] = field(default_factory=list)
    points: list[tuple[float, float, str]] = field(default_factory=list)  # x, y, tooltip
    path: str = ""


def flow_chart(
    rows: list[dict], layers: list[str], label_width: int = 330, cell_width: int = 118
) -> Chart:
    """One row per table, one cell per layer: a bar sized against the row's largest count.

    ``rows`` items: ``{"label": str, "values": {layer: int | None}}``.
    """
    row_height, top, bar_height = 30, 28, 14
    width = label_width + cell_width * len(layers) + 8
    chart = Chart(width=width, height=top + row_height * len(rows) + 6, title="row flow")
    for i, layer in enumerate(layers):
        x = label_width + i * cell_width
        chart.texts.append(Text(x, 16, layer, css="axis-head"))
    for r, row in enumerate(rows):
        y = top + r * row_height
        chart.lines.append((0, y - 8, width, y - 8, "grid"))
        chart.texts.append(Text(0, y + bar_height - 3, row["label"], css="row-label"))
        values = row["values"]
        peak = max((v for v in values.values() if v), default=0)
        for i, layer in enumerate(layers):
            x = label_width + i * cell_width
            value = values.get(layer)
            if value is None:
                chart.texts.append(Text(x, y + bar_height - 3, "\N{EN DASH}", css="muted"))
                continue
            length = 0.0 if not peak else max(2.0, (cell_width - 56) * value / peak)
            chart.bars.append(
                Bar(
                    x=x,
                    y=y,
                    width=length if value else 0.0,
                    height=bar_height,
                    css=f"bar-{layer}",
                    label=f"{value:,}",
                    label_x=x + (length if value else 0) + 4,
                    title=f"{row['label']}: {layer} {value:,} rows",
                )
            )
    return chart


def trend_chart(title: str, dates: list[str], values: list[float | None]) -> Chart:
    """A small line chart of one metric over run dates, every point labelled."""
    width, height = 300, 150
    left, right, top, bottom = 30, 30, 34, 28
    chart = Chart(width=width, height=height, title=title)
    chart.texts.append(Text(0, 14, title, css="chart-title"))
    known = [v for v in values if v is not None]
    chart.lines.append((left, height - bottom, width - right, height - bottom, "axis"))
    if not known:
        chart.texts.append(Text(width / 2, height / 2, "no data", anchor="middle", css="muted"))
        return chart
    low, high = min(0.0, min(known)), max(known)
    span = (high - low) or 1.0
    step = (width - left - right) / max(len(dates) - 1, 1)
    coords = []
    for i, (day, value) in enumerate(zip(dates, values)):
        x = left + step * i if len(dates) > 1 else width / 2
        chart.texts.append(Text(x, height - 10, day[5:], anchor="middle", css="axis-label"))
        if value is None:
            continue
        y = top + (height - top - bottom) * (1 - (value - low) / span)
        coords.append((x, y))
        label = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
        chart.points.append((x, y, f"{day}: {label}"))
        chart.texts.append(Text(x, y - 7, label, anchor="middle", css="point-label"))
    chart.path = " ".join(
        f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(coords)
    )
    return chart
