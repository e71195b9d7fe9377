"""What the report's maps look like: the style of every raster output of the workflow.

:func:`map_style` gives, for a raster ``{stage}/{name}.tif`` of the results contract, the
keyword arguments of :func:`karstflow.plotting.raster_map` (title, units, colour map or
class legend). Class legends come from the modules that define the codes, so a map never
disagrees with the stage that wrote it. Rasters of one kind across years
(``water_yield_2000``, ``water_yield_2023``) share colour limits, see
:func:`shared_limits`, so the years compare by eye.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["map_key", "map_style", "rgb_band_indices", "shared_limits"]

_YEAR = re.compile(r"_(\d{4})$")


def _classes(
    landcover_legend: Mapping[int, str] | None = None, landcover_colours: Mapping[int, Any] | None = None
) -> dict[str, tuple[dict[int, str], dict[int, Any] | None]]:
    from karstflow.carbon import NPP_TREND_CLASSES
    from karstflow.demo import LANDCOVER_CLASSES, LANDCOVER_COLOURS
    from karstflow.desertification import RD_GRADES
    from karstflow.terrain import ASPECT_CLASSES
    from karstflow.tradeoffs import ZONE_NAMES
    from karstflow.trends import TREND_CLASSES

    trend_colours = {1: "#1a9641", 2: "#a6d96a", 3: "#d9d9d9", 4: "#fdae61", 5: "#d7191c"}
    return {
        "aspect_class": (ASPECT_CLASSES, {0: "#d9d9d9", 1: "#2c7bb6", 2: "#abd9e9", 3: "#fdae61", 4: "#d7191c"}),
        # the region's legend (config landcover.classes / colours), the default otherwise
        "landcover": (
            dict(landcover_legend or LANDCOVER_CLASSES),
            dict(landcover_colours) if landcover_colours else (None if landcover_legend else LANDCOVER_COLOURS),
        ),
        "trend_class": (TREND_CLASSES, trend_colours),
        "npp_trend_class": ({k: v.replace("_", " ") for k, v in NPP_TREND_CLASSES.items()}, trend_colours),
        "rd_grade": (RD_GRADES, {0: "#1a9850", 1: "#d9ef8b", 2: "#fee08b", 3: "#fdae61", 4: "#f46d43", 5: "#a50026"}),
        "improvement_zones": (ZONE_NAMES, {0: "#e0e0e0", 1: "#9e9ac8", 2: "#fdae61", 3: "#d7191c"}),
    }


# stage/name (year stripped) -> (label, units, colour map, extra keyword arguments)
_CONTINUOUS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "terrain/dem": ("elevation", "m", "terrain", {}),
    "terrain/slope": ("slope (Horn)", "degree", "YlOrRd", {"vmin": 0.0}),
    "terrain/aspect": ("aspect", "degree clockwise from north (-1 flat)", "twilight", {"vmin": 0.0, "vmax": 360.0}),
    "imagery/clear_count": ("clear observations", "scenes", "viridis", {"vmin": 0.0}),
    "greening/trend_slope": (
        "Theil-Sen slope of the vegetation index",
        "index units per year",
        "RdYlGn",
        {"symmetric": True},
    ),
    "greening/trend_slope_low": (
        "Theil-Sen slope, lower confidence bound (Sen 1968)",
        "index units per year",
        "RdYlGn",
        {"symmetric": True},
    ),
    "greening/trend_slope_high": (
        "Theil-Sen slope, upper confidence bound (Sen 1968)",
        "index units per year",
        "RdYlGn",
        {"symmetric": True},
    ),
    "greening/trend_p": ("Mann-Kendall p", "p", "viridis_r", {"vmin": 0.0, "vmax": 1.0}),
    "carbon/npp_trend_slope": ("NPP trend (Theil-Sen)", "g C m-2 yr-1 per year", "RdYlGn", {"symmetric": True}),
    "carbon/carbon_storage": ("carbon storage", "Mg C ha-1", "YlGn", {"vmin": 0.0}),
    "carbon/carbon_sequestration": ("carbon sequestration", "Mg C ha-1", "RdYlGn", {"symmetric": True}),
    "services/carbon_storage": ("carbon storage", "Mg C ha-1", "YlGn", {"vmin": 0.0}),
    "services/soil_retention": ("soil retention (RUSLE)", "t ha-1 yr-1", "YlOrBr", {"vmin": 0.0}),
    "services/soil_loss": ("actual soil loss (RUSLE)", "t ha-1 yr-1", "OrRd", {"vmin": 0.0}),
    "services/water_yield": ("water yield (InVEST)", "mm yr-1", "Blues", {}),
    "services/habitat_quality": ("habitat quality (InVEST)", "index 0-1", "viridis", {"vmin": 0.0, "vmax": 1.0}),
    "services/habitat_degradation": ("habitat degradation (total threat)", "index", "magma_r", {"vmin": 0.0}),
    "services/ls_factor": ("RUSLE LS factor", "1", "cividis", {"vmin": 0.0}),
    "services/flow_accumulation": ("flow accumulation (MFD)", "cells", "Blues", {"vmin": 1.0}),
}
_CLASS_LABELS = {
    "aspect_class": "aspect class",
    "landcover": "land cover",
    "trend_class": "greening trend",
    "npp_trend_class": "NPP trend",
    "rd_grade": "rocky desertification grade",
    "improvement_zones": "service-improvement zones",
}


def map_key(stage: str, name: str) -> tuple[str, int | None]:
    """``("stage/kind", year)``: the file stem without a trailing ``_YYYY`` (or period)."""
    m = _YEAR.search(name)
    if m:
        return f"{stage}/{name[: m.start()]}", int(m.group(1))
    for prefix in ("composite", "clear_count"):
        if name.startswith(prefix + "_"):
            return f"{stage}/{prefix}", None
    return f"{stage}/{name}", None


def map_style(
    stage: str,
    name: str,
    *,
    region: str | None = None,
    landcover_legend: Mapping[int, str] | None = None,
    landcover_colours: Mapping[int, Any] | None = None,
) -> dict[str, Any]:
    """Keyword arguments of :func:`karstflow.plotting.raster_map` for ``{stage}/{name}.tif``.

    Land-cover maps use ``landcover_legend`` (code -> name) and ``landcover_colours``
    (code -> (r, g, b) 0-255) when given: the config's legend, so a region with its own
    legend gets its own class names in the report.
    """
    key, year = map_key(stage, name)
    kind = key.split("/", 1)[1]
    suffix = (
        f" {year}"
        if year is not None
        else (f" {name[len(kind) + 1 :]}" if kind in ("composite", "clear_count") else "")
    )
    prefix = f"{region}: " if region else ""
    classes = _classes(landcover_legend, landcover_colours)
    if kind in classes:
        names, colours = classes[kind]
        return {"title": f"{prefix}{_CLASS_LABELS[kind]}{suffix}", "classes": dict(names), "colours": colours,
                "legend_title": _CLASS_LABELS[kind]}
    if kind == "composite":
        return {"title": f"{prefix}true-colour composite{suffix}", "rgb": True}
    if key in _CONTINUOUS:
        label, units, cmap, extra = _CONTINUOUS[key]
        return {"title": f"{prefix}{label}{suffix}", "units": units, "cmap": cmap, **extra}
    return {"title": f"{prefix}{stage} {name}", "units": "", "cmap": "viridis"}


def rgb_band_indices(band_names: Sequence[str]) -> list[int]:
    """0-based indices of red, green, blue among Sentinel-2 band names (B4, B3, B2 or
    red, green, blue); the first three bands when they are not found."""
    names = [str(b).upper() for b in band_names]
    for trio in (("B4", "B3", "B2"), ("B04", "B03", "B02"), ("RED", "GREEN", "BLUE")):
        if all(t in names for t in trio):
            return [names.index(t) for t in trio]
    return [0, 1, 2][: max(1, min(3, len(names)))]


def shared_limits(arrays: Mapping[str, np.ndarray], style: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """Colour limits common to rasters of one kind: the 2nd and 98th percentiles of their
    pooled finite values, unless the style fixes them."""
    values = [np.asarray(a, dtype=float) for a in arrays.values()]
    pooled = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.array([])
    if pooled.size == 0:
        return style.get("vmin"), style.get("vmax")
    lo, hi = np.percentile(pooled, [2, 98])
    return (style["vmin"] if "vmin" in style else float(lo)), (style["vmax"] if "vmax" in style else float(hi))
