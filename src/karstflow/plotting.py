"""Map figures with their furniture: legend, scale bar and north arrow (matplotlib, Agg).

Shared by every stage that draws a map, so maps of the report look alike::

    fig, ax = map_figure(bounds, title="...")      # axes in CRS units (metres), no ticks
    gdf.plot(ax=ax, color=...)
    add_legend(ax, {"label": colour, ...}, title="...")
    add_scale_bar(ax)                               # a round length, about a fifth of the width
    add_north_arrow(ax)                             # grid north (the map's y axis)
    # or all three at once: finish_map(ax, entries, legend_title="...")
    save_figure(fig, path)                          # atomic write, figure closed

The scale bar assumes a projected CRS in metres (every county-stage output is on the
region grid, which is); the north arrow points up the grid, i.e. grid north, which differs
from true north by the meridian convergence (under 2 deg within a UTM zone).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from karstflow.grid import register_rio  # noqa: E402

__all__ = [
    "add_legend",
    "finish_map",
    "forest_type_colours",
    "add_north_arrow",
    "add_scale_bar",
    "map_figure",
    "nice_length",
    "save_figure",
]


def map_figure(
    bounds: Sequence[float], *, title: str | None = None, width_in: float = 7.0, margin: float = 0.02
) -> tuple[Figure, Axes]:
    """A figure whose axes show ``bounds`` (xmin, ymin, xmax, ymax) at equal scale."""
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    dx, dy = xmax - xmin, ymax - ymin
    if not (dx > 0 and dy > 0):
        raise ValueError(f"map bounds must have xmax > xmin and ymax > ymin, found {tuple(bounds)}")
    aspect = dy / dx
    fig, ax = plt.subplots(figsize=(width_in, max(2.5, width_in * aspect) + (0.4 if title else 0.0)))
    ax.set_xlim(xmin - margin * dx, xmax + margin * dx)
    ax.set_ylim(ymin - margin * dy, ymax + margin * dy)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=11)
    return fig, ax


def nice_length(target: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``target`` (> 0)."""
    if not target > 0:
        raise ValueError(f"scale bar length must be positive, found {target}")
    exp = math.floor(math.log10(target))
    for step in (5, 2, 1):
        if step * 10**exp <= target:
            return float(step * 10**exp)
    return float(10**exp)


def add_scale_bar(
    ax: Axes, length_m: float | None = None, *, fraction: float = 0.2, location: str = "lower left"
) -> float:
    """Draw a two-segment scale bar (metres of the axes' CRS); returns its length in m."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width, height = x1 - x0, y1 - y0
    length = float(length_m) if length_m else nice_length(fraction * width)
    pad = 0.04
    bar_h = 0.012 * height
    x = x0 + pad * width if location.endswith("left") else x1 - pad * width - length
    y = y0 + pad * height if location.startswith("lower") else y1 - pad * height - bar_h
    box = Rectangle((x - 0.02 * width, y - 0.015 * height), length + 0.06 * width, bar_h + 0.065 * height,
                    facecolor="white", edgecolor="none", alpha=0.75, zorder=9)
    ax.add_patch(box)
    for k in range(2):
        ax.add_patch(Rectangle((x + k * length / 2, y), length / 2, bar_h,
                               facecolor="black" if k == 0 else "white", edgecolor="black", lw=0.8, zorder=10))
    unit, scale = ("km", 1000.0) if length >= 1000 else ("m", 1.0)
    for k, frac in enumerate((0.0, 0.5, 1.0)):
        text = f"{frac * length / scale:g}" + (f" {unit}" if k == 2 else "")
        ax.text(x + frac * length, y + bar_h + 0.008 * height, text, ha="center", va="bottom", fontsize=7, zorder=11)
    return length


def add_north_arrow(ax: Axes, *, location: tuple[float, float] = (0.94, 0.9), size: float = 0.08) -> None:
    """Draw an arrow labelled N pointing up the map (grid north), in axes fractions."""
    x, y = location
    ax.annotate(
        "N", xy=(x, y), xytext=(x, y - size), xycoords="axes fraction", textcoords="axes fraction",
        ha="center", va="top", fontsize=11, fontweight="bold",
        arrowprops={"facecolor": "black", "edgecolor": "black", "width": 3, "headwidth": 9, "headlength": 9},
        zorder=12,
    )


def add_legend(
    ax: Axes, entries: Mapping[str, Any], *, title: str | None = None, outside: bool = True, **kwargs: Any
) -> None:
    """A legend of filled patches: label -> colour (or dict of Patch keyword arguments).

    Placed to the right of the map by default, so it hides nothing.
    """
    handles = []
    for label, style in entries.items():
        props = dict(style) if isinstance(style, Mapping) else {"facecolor": style, "edgecolor": "0.3"}
        handles.append(Patch(label=label, **props))
    place = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0)} if outside else {"loc": "upper left"}
    place.update(kwargs)
    ax.legend(handles=handles, title=title, fontsize=8, title_fontsize=8, framealpha=0.85, **place)


def finish_map(ax: Axes, entries: Mapping[str, Any], *, legend_title: str | None = None) -> None:
    """Legend, scale bar and north arrow; drops the axis labels plotting libraries add."""
    ax.set_xlabel("")
    ax.set_ylabel("")
    add_legend(ax, entries, title=legend_title)
    add_scale_bar(ax)
    add_north_arrow(ax)


def save_figure(fig: Figure, path: Any, *, dpi: int = 150) -> None:
    """Write ``fig`` as PNG atomically and close it.

    Every figure karstflow writes goes through here. No ``Software`` text chunk (matplotlib
    writes its version there): the bytes depend on the figure, not on the installation;
    PNG output carries no date, so two runs write the same file."""
    from karstflow.io import atomic_path

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png", metadata={"Software": None})
    finally:
        plt.close(fig)


def forest_type_colours(types: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """Colours of forest types: those of the land-cover legend where the name matches
    (forested land, other forest land, sparse forest land), tab10 colours otherwise."""
    from karstflow.demo import LANDCOVER_CLASSES, LANDCOVER_COLOURS

    by_name = {name: tuple(c / 255 for c in LANDCOVER_COLOURS[code]) for code, name in LANDCOVER_CLASSES.items()}
    cmap = matplotlib.colormaps["tab10"]
    return {t: by_name.get(t, cmap(i % 10)[:3]) for i, t in enumerate(types)}


# --------------------------------------------------------------------------------------
# raster maps (the report's map of every raster output)
# --------------------------------------------------------------------------------------


def raster_map(
    da: Any,
    *,
    title: str | None = None,
    units: str | None = None,
    classes: Mapping[int, str] | None = None,
    colours: Mapping[int, Any] | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    symmetric: bool = False,
    rgb_bands: Sequence[int] | None = None,
    legend_title: str | None = None,
) -> Figure:
    """A map of a raster on its grid, with legend, scale bar and north arrow.

    ``da``: a (y, x) DataArray with rio transform (NaN = no data), or (band, y, x) with
    ``rgb_bands`` (0-based indices of red, green, blue; stretched between the 2nd and 98th
    percentiles). ``classes`` (code -> name) draws a categorical map with a patch legend
    (``colours`` code -> colour, else tab10); otherwise a continuous map with a colour
    bar labelled ``units``, limits ``vmin``/``vmax`` (default the 2nd/98th percentiles,
    centred on 0 when ``symmetric``).
    """
    import numpy as np
    register_rio()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    xmin, ymin, xmax, ymax = (float(b) for b in da.rio.bounds())
    fig, ax = map_figure((xmin, ymin, xmax, ymax), title=title)
    extent = (xmin, xmax, ymin, ymax)
    if rgb_bands is not None:
        bands = np.stack([np.asarray(da.isel(band=i).values, dtype=float) for i in rgb_bands], axis=-1)
        finite = np.isfinite(bands).all(axis=-1)
        out = np.ones(bands.shape[:2] + (4,))
        out[..., 3] = finite
        for c in range(3):
            v = bands[..., c][finite]
            lo, hi = (np.percentile(v, [2, 98]) if v.size else (0.0, 1.0))
            out[..., c] = np.clip((bands[..., c] - lo) / ((hi - lo) or 1.0), 0, 1)
        out[~finite, :3] = 1.0
        ax.imshow(out, extent=extent, interpolation="nearest", origin="upper")
        add_legend(ax, {"no data": {"facecolor": "white", "edgecolor": "0.3"}}, title=legend_title or "true colour")
    elif classes:
        values = np.asarray(da.values, dtype=float)
        codes = sorted(int(c) for c in classes)
        palette = matplotlib.colormaps["tab10"]
        colour_of = {}
        for i, code in enumerate(codes):
            colour = (colours or {}).get(code)
            if colour is None:
                colour = palette(i % 10)
            elif isinstance(colour, tuple | list) and max(colour) > 1:
                colour = tuple(v / 255 for v in colour)
            colour_of[code] = colour
        lut = ListedColormap([colour_of[c] for c in codes])
        index = np.full(values.shape, np.nan)
        for i, code in enumerate(codes):
            index[values == code] = i
        ax.imshow(np.ma.masked_invalid(index), extent=extent, interpolation="nearest", origin="upper",
                  cmap=lut, norm=BoundaryNorm(np.arange(len(codes) + 1) - 0.5, len(codes)))
        present = {c for c in codes if (values == c).any()}
        entries: dict[str, Any] = {
            f"{c} {classes[c]}": {"facecolor": colour_of[c], "edgecolor": "0.3"} for c in codes if c in present
        }
        add_legend(ax, entries or {"no data": "white"}, title=legend_title)
    else:
        values = np.asarray(da.values, dtype=float)
        finite = values[np.isfinite(values)]
        lo, hi = (np.percentile(finite, [2, 98]) if finite.size else (0.0, 1.0))
        lo = float(vmin) if vmin is not None else float(lo)
        hi = float(vmax) if vmax is not None else float(hi)
        if symmetric:
            m = max(abs(lo), abs(hi)) or 1.0
            lo, hi = -m, m
        if hi <= lo:
            hi = lo + 1.0
        image = ax.imshow(np.ma.masked_invalid(values), extent=extent, interpolation="nearest", origin="upper",
                          cmap=cmap, vmin=lo, vmax=hi)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, extend="both")
        bar.set_label(units or "", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    # a third of the width leaves room between the bar's three labels on small regions
    add_scale_bar(ax, fraction=0.3)
    add_north_arrow(ax)
    return fig


__all__ += ["raster_map"]


def note_figure(note: str, *, title: str | None = None, figsize: tuple[float, float] = (6.5, 3.0)) -> Figure:
    """A figure with no plot, only ``note`` centred (for a figure there is nothing to draw for)."""
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_axis_off()
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=10, wrap=True, transform=ax.transAxes)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def tradeoff_heatmap(
    pairs: Any, *, title: str | None = None, alpha: float = 0.05, note: str | None = None
) -> Figure:
    """The trade-off / synergy matrix: Spearman rho of each pair of services as a
    red (trade-off) to blue (synergy) heat map, '*' where p < ``alpha``.

    ``pairs``: a DataFrame with service_a, service_b, rho, p_value
    (:func:`karstflow.tradeoffs.tradeoff_matrix`). Without pairs (None or no rows) the
    figure is :func:`note_figure` of ``note`` (default "not evaluated: no pairs of services").
    """
    import numpy as np

    if pairs is None or len(pairs) == 0:
        return note_figure(note or "not evaluated: no pairs of services", title=title or "trade-offs and synergies")

    names = list(dict.fromkeys([*pairs["service_a"], *pairs["service_b"]]))
    n = len(names)
    rho = np.full((n, n), np.nan)
    np.fill_diagonal(rho, 1.0)
    stars = np.full((n, n), "", dtype=object)
    for row in pairs.itertuples():
        i, j = names.index(row.service_a), names.index(row.service_b)
        rho[i, j] = rho[j, i] = row.rho
        if row.p_value == row.p_value and row.p_value < alpha:
            stars[i, j] = stars[j, i] = "*"
    fig, ax = plt.subplots(figsize=(1.4 * n + 2.5, 1.2 * n + 1.5))
    image = ax.imshow(np.ma.masked_invalid(rho), cmap="RdBu", vmin=-1, vmax=1)
    labels = [s.replace("_", " ") for s in names]
    ax.set_xticks(range(n), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    for i in range(n):
        for j in range(n):
            text = "" if i == j else ("n/a" if rho[i, j] != rho[i, j] else f"{rho[i, j]:.2f}{stars[i, j]}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if rho[i, j] == rho[i, j] and abs(rho[i, j]) > 0.6 else "black")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("Spearman rho of the per-pixel changes (> 0 synergy, < 0 trade-off)", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    ax.set_title(title or "trade-offs and synergies", fontsize=10)
    fig.text(0.01, 0.01, f"* p < {alpha:g}", fontsize=7)
    return fig


def change_bars(
    changes: Any, columns: Mapping[str, str], *, title: str | None = None, note: str | None = None
) -> Figure:
    """Horizontal bars of the relative change (%) of service figures between two years.

    ``changes``: one row of :func:`karstflow.tradeoffs.service_changes` (a Series);
    ``columns``: label -> figure name (its ``{name}_change_pct`` is drawn). With no
    change (``changes`` None, e.g. one service year) or no columns the figure is
    :func:`note_figure` of ``note`` (default "not evaluated: no change to draw"). A change
    without a percentage (from a total of 0, NaN) is labelled "n/a" with no bar.
    """
    if changes is None or not columns:
        return note_figure(note or "not evaluated: no change to draw", title=title or "change of the services")
    labels = list(columns)
    raw = [float(changes[f"{columns[label]}_change_pct"]) for label in labels]
    values = [v if math.isfinite(v) else 0.0 for v in raw]  # no % change from a total of 0: "n/a"
    fig, ax = plt.subplots(figsize=(6.5, 0.55 * len(labels) + 1.3))
    colours = ["#2166ac" if v >= 0 else "#b2182b" for v in values]
    ax.barh(range(len(labels)), values, color=colours)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.3", lw=0.8)
    for i, (v, r) in enumerate(zip(values, raw, strict=True)):
        text = f" {v:+.1f} %" if math.isfinite(r) else " n/a"
        ax.text(v, i, text, va="center", ha="left" if v >= 0 else "right", fontsize=8)
    ax.set_xlabel("change (%)", fontsize=8)
    lo, hi = min(values + [0.0]), max(values + [0.0])
    pad = 0.25 * ((hi - lo) or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title(title or "change of the services", fontsize=10)
    return fig


__all__ += ["change_bars", "note_figure", "tradeoff_heatmap"]
