"""Checks of a drawn matplotlib Figure that a reader would otherwise catch by eye: text that
runs into other text or into another panel, legends over the data, empty panels, markers cut
at a panel's edge, unlabelled y-axes, crowded log ticks. Each returns a list of problems
(empty when the figure is fine), so that an assertion names them all."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

TOLERANCE = 1.0  # pixels: boxes that merely touch do not collide


def draw(fig: Figure):
    """Lay the figure out (constrained layout runs at draw time); its renderer."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def visible_axes(fig: Figure) -> list:
    return [ax for ax in fig.axes if ax.get_visible()]


def name(ax) -> str:
    """An axes as a problem message names it: its title, else its y label, else its index."""
    title = ax.get_title() or ax.get_ylabel()
    return repr(title.replace("\n", " ")) if title else f"axes #{ax.figure.axes.index(ax)}"


def _shown(text) -> bool:
    return text.get_visible() and bool(text.get_text().strip())


def texts(ax, renderer) -> list[tuple[str, Bbox]]:
    """(what, box in pixels) of every piece of text an axes draws around its data: titles,
    axis labels, tick labels, annotations, its legend."""
    items = [(f"title {t.get_text()!r}", t) for t in (ax.title, ax._left_title, ax._right_title)]
    items += [(f"x label {ax.get_xlabel()!r}", ax.xaxis.label),
              (f"y label {ax.get_ylabel()!r}", ax.yaxis.label)]
    for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        items += [(f"{which} tick {label.get_text()!r}", label) for _, label in tick_labels(axis)]
    items += [(f"text {t.get_text()!r}", t) for t in ax.texts]
    boxes = [(what, t.get_window_extent(renderer)) for what, t in items if _shown(t)]
    legend = ax.get_legend()
    if legend is not None and legend.get_visible():
        boxes.append(("legend", legend.get_window_extent(renderer)))
    return boxes


def tick_labels(axis) -> list[tuple[float, object]]:
    """(position, label) of the ticks an axis draws: those inside its view, major and minor."""
    low, high = sorted(axis.get_view_interval())
    span = (high - low) * 1e-9
    return [(tick.get_loc(), label)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks()
            if low - span <= tick.get_loc() <= high + span
            for label in (tick.label1, tick.label2) if _shown(label)]


def _overlap(a: Bbox, b: Bbox) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > TOLERANCE
            and min(a.y1, b.y1) - max(a.y0, b.y0) > TOLERANCE)


def collisions(fig: Figure) -> list[str]:
    """Text of one panel that overlaps another panel's text or data area, a legend over any
    data area, the figure's own title or legend over a panel, and tick labels of one axis
    that overlap each other."""
    renderer = draw(fig)
    axes = visible_axes(fig)
    found = []
    boxes = {ax: texts(ax, renderer) for ax in axes}
    areas = {ax: ax.get_window_extent(renderer) for ax in axes}
    figure_texts = [(f"figure title {fig.get_suptitle()!r}", fig._suptitle)] \
        if fig._suptitle is not None and _shown(fig._suptitle) else []
    figure_boxes = [(what, t.get_window_extent(renderer)) for what, t in figure_texts]
    figure_boxes += [("figure legend", lg.get_window_extent(renderer)) for lg in fig.legends]
    for i, ax in enumerate(axes):
        for other in axes[i + 1:]:
            for what, box in boxes[ax]:
                for other_what, other_box in boxes[other]:
                    if _overlap(box, other_box):
                        found.append(f"{name(ax)} {what} overlaps {name(other)} {other_what}")
        for other in axes:
            if other is ax:
                continue
            for what, box in boxes[ax]:
                if _overlap(box, areas[other]):
                    found.append(f"{name(ax)} {what} overlaps the panel {name(other)}")
        for what, box in boxes[ax]:
            if what == "legend" and _overlap(box, areas[ax]):
                found.append(f"{name(ax)} legend lies over its data")
        for axis in ("x", "y"):
            ticks = [b for what, b in boxes[ax] if what.startswith(f"{axis} tick")]
            if any(_overlap(a, b) for j, a in enumerate(ticks) for b in ticks[j + 1:]):
                found.append(f"{name(ax)}: {axis} tick labels overlap each other")
    for what, box in figure_boxes:
        for ax in axes:
            if _overlap(box, areas[ax]) or any(_overlap(box, b) for _, b in boxes[ax]):
                found.append(f"{what} overlaps {name(ax)}")
    return found


def empty_axes(fig: Figure) -> list[str]:
    """Hidden panels (an empty slot in the grid) and panels that draw nothing."""
    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            found.append(f"{name(ax)} is a hidden (empty) slot")
        elif not (ax.lines or ax.collections or ax.images or ax.patches or ax.containers):
            found.append(f"{name(ax)} draws nothing")
    return found


def markers_outside(fig: Figure) -> list[str]:
    """Markers (with their size) and annotations that reach past their panel's edge."""
    renderer = draw(fig)
    found = []
    for ax in visible_axes(fig):
        area = ax.get_window_extent(renderer)
        for line in ax.lines:
            if not line.get_visible() or line.get_marker() in (None, "None", "", " "):
                continue
            radius = line.get_markersize() * fig.dpi / 72 / 2
            xy = np.column_stack([np.asarray(line.get_xdata(), float),
                                  np.asarray(line.get_ydata(), float)])
            xy = xy[np.isfinite(xy).all(axis=1)]
            if not len(xy):
                continue
            px = line.get_transform().transform(xy)
            out = ((px[:, 0] - radius < area.x0 - TOLERANCE)
                   | (px[:, 0] + radius > area.x1 + TOLERANCE)
                   | (px[:, 1] - radius < area.y0 - TOLERANCE)
                   | (px[:, 1] + radius > area.y1 + TOLERANCE))
            if out.any():
                found.append(f"{name(ax)}: {int(out.sum())} marker(s) of "
                             f"{line.get_label()!r} cut at the panel's edge")
        for text in ax.texts:
            box = text.get_window_extent(renderer)
            inside = area.padded(TOLERANCE)
            if _shown(text) and not (inside.contains(box.x0, box.y0)
                                     and inside.contains(box.x1, box.y1)):
                found.append(f"{name(ax)}: text {text.get_text()!r} outside the panel")
    return found


def unlabelled_y(fig: Figure) -> list[str]:
    """Panels whose y-axis shows tick labels but has no label saying what it is."""
    draw(fig)
    return [f"{name(ax)}: y-axis has tick labels but no label" for ax in visible_axes(fig)
            if tick_labels(ax.yaxis)
            and not ax.get_ylabel().strip()]


def crowded_log_ticks(fig: Figure) -> list[str]:
    """Log y-axes should label powers of ten only (between-decade labels such as 2x10^-1
    crowd a short axis), and at least two of them, so that the scale can be read."""
    draw(fig)
    found = []
    for ax in visible_axes(fig):
        if ax.get_yscale() != "log":
            continue
        ticks = [(v, label.get_text()) for v, label in tick_labels(ax.yaxis)]
        between = [t for v, t in ticks if not math.isclose(math.log10(v), round(math.log10(v)))]
        if between:
            found.append(f"{name(ax)}: log axis labels between powers of ten: {between}")
        if len(ticks) < 2:
            found.append(f"{name(ax)}: log axis has {len(ticks)} labelled tick(s)")
    return found


def problems(fig: Figure) -> list[str]:
    """Every check above."""
    return (collisions(fig) + empty_axes(fig) + markers_outside(fig) + unlabelled_y(fig)
            + crowded_log_ticks(fig))
