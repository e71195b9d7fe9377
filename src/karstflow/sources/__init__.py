"""Tile acquisition: one interface over local files, STAC APIs and Earth Engine.

A *source* lists the scenes of a compositing period that cover a region grid, fetching
them into the tile cache first when it is remote, and says where the region's DEM is:

* :class:`~karstflow.sources.local.LocalSource` (``local``; the demo regions are local):
  per-date files listed in a date table (the demo's ``s2/scenes.csv`` is one), one time
  stack per band with an optional cloud-mask stack, or Sentinel-2 L2A SAFE products;
* :class:`~karstflow.sources.stac.StacSource` (``stac``): pystac-client + odc-stac;
* :class:`~karstflow.sources.earthengine.EarthEngineSource` (``earthengine``):
  earthengine-api with ``ee.data.computePixels``.

Every source hands back :class:`Scene` objects: per band, the files (and band indexes)
that hold it, plus the item metadata that decides harmonisation
(:mod:`karstflow.sources.harmonise`) and masking (:class:`MaskRules`). Remote sources
write their pixels to the tile cache (:mod:`karstflow.sources.cache`) as GeoTIFFs on the
region CRS and resolution, so reading a scene is always reading local files
(:mod:`karstflow.sources.rasters`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from karstflow.grid import RegionGrid
from karstflow.sources.harmonise import HarmonisationError

log = logging.getLogger(__name__)

__all__ = [
    "AoiOutsideDataError",
    "CredentialsError",
    "HarmonisationError",
    "ImageryError",
    "Layer",
    "MaskRules",
    "MissingBandError",
    "NoScenesError",
    "Period",
    "RemoteError",
    "Scene",
    "Source",
    "S2_BANDS",
    "MASK_LAYERS",
    "get_source",
    "periods_of",
]

#: Sentinel-2 bands composited by default (10 m and 20 m bands used by the land-cover
#: stage), named as in the demo scenes and Earth Engine.
S2_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8", "B11", "B12")

#: Layers that describe clouds rather than reflectance, in the order they are trusted
#: (see :func:`karstflow.sources.rasters.clear_mask`).
MASK_LAYERS: tuple[str, ...] = ("CS_CDF", "MSK_CLASSI_OPAQUE", "MSK_CLASSI_CIRRUS", "QA60", "SCL", "CLOUD_MASK")

#: Scene encodings: ``s2-l2a-dn`` are uint16 digital numbers turned into reflectance with
#: the item's BOA offset; ``as-is`` values (reflectance, NDVI, elevation) are used unchanged.
ENCODINGS = ("s2-l2a-dn", "as-is")


class ImageryError(ValueError):
    """Imagery cannot be acquired or composited; the message names region and period."""


class NoScenesError(ImageryError):
    """No scene falls in a compositing period."""


class AoiOutsideDataError(ImageryError):
    """The region grid does not overlap the data of a period."""


class MissingBandError(ImageryError):
    """A scene lacks a band the composite needs."""


class CredentialsError(ImageryError):
    """A remote source needs credentials that the environment does not provide."""


class RemoteError(ImageryError):
    """A remote request failed for good: the message names region, period, product and
    host, and the plain cause ("connection refused", "timed out", "HTTP 503"); the
    library's exception is chained (``__cause__``). Raised by
    :func:`~karstflow.sources.fetch.retry_call`, never retried again by an outer one."""


@dataclass(frozen=True)
class Period:
    """A compositing period: inclusive start and end dates."""

    name: str
    start: dt.date
    end: dt.date

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def periods_of(region: Mapping[str, Any]) -> dict[str, Period]:
    """The region's configured periods (``regions.<id>.periods``) as :class:`Period` objects."""
    out = {}
    for name, p in (region.get("periods") or {}).items():
        out[str(name)] = Period(str(name), dt.date.fromisoformat(str(p["start"])), dt.date.fromisoformat(str(p["end"])))
    return out


@dataclass(frozen=True)
class MaskRules:
    """Which pixels count as clear.

    ``scl_not_clear``: Sentinel-2 L2A scene-classification codes that are not clear
    (default 0 no data, 1 saturated/defective, 3 cloud shadow, 8 cloud medium
    probability, 9 cloud high probability, 10 thin cirrus; ESA Sentinel-2 L2A product
    specification, Sen2Cor SCL legend). ``cs_cdf_threshold``: Cloud Score+ ``cs_cdf``
    at or above which a pixel is clear (Earth Engine only; Google's Cloud Score+ guide
    suggests 0.50-0.65).
    """

    scl_not_clear: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
    cs_cdf_threshold: float = 0.60


@dataclass(frozen=True)
class Layer:
    """One band of one file: ``index`` is the 1-based band index in ``path``."""

    path: str
    index: int = 1


@dataclass(frozen=True)
class Scene:
    """One acquisition date: each layer name maps to the files holding it.

    Several files per layer are mosaicked in order (the first valid pixel wins), e.g.
    the cache tiles of one date. ``meta`` carries what decides harmonisation and what
    the manifest and headline figures report (``boa_add_offset``,
    ``processing_baseline``, ``cloud_cover_pct``, item ids).
    """

    id: str
    date: dt.date
    layers: Mapping[str, tuple[Layer, ...]]
    meta: Mapping[str, Any] = field(default_factory=dict)
    encoding: str = "s2-l2a-dn"

    def __post_init__(self) -> None:
        if self.encoding not in ENCODINGS:
            raise ValueError(f"scene {self.id}: encoding must be one of {ENCODINGS}, found {self.encoding!r}")

    @property
    def files(self) -> list[str]:
        seen: dict[str, None] = {}
        for layers in self.layers.values():
            for layer in layers:
                seen.setdefault(layer.path, None)
        return list(seen)


@runtime_checkable
class Source(Protocol):
    """What every adapter offers the workflow."""

    name: str
    region: str

    @property
    def bands(self) -> tuple[str, ...]:
        """Bands the composites of this source carry (and their order)."""
        ...

    def scenes(self, period: Period, grid: RegionGrid) -> list[Scene]:
        """Scenes of ``period`` over ``grid``, readable from local files.

        Remote sources fetch what the tile cache does not hold first. Raises
        :class:`NoScenesError` when the period has none.
        """
        ...

    def dem(self, grid: RegionGrid) -> list[str]:
        """Files that together hold the DEM over ``grid`` (fetched into the cache if remote)."""
        ...


def context(region: str, period: Period | str | None = None) -> str:
    """``"region X, period Y"``: how every imagery error starts."""
    name = period.name if isinstance(period, Period) else period
    return f"region {region}" + (f", period {name}" if name else "")


def select_period(scenes: Sequence[Scene], period: Period, region: str) -> list[Scene]:
    """Scenes dated within ``period``; :class:`NoScenesError` naming what exists if none."""
    chosen = [s for s in scenes if period.contains(s.date)]
    if not chosen:
        if scenes:
            dates = sorted(s.date for s in scenes)
            have = f"the source has {len(dates)} scenes from {dates[0]} to {dates[-1]}"
        else:
            have = "the source has no scenes at all"
        raise NoScenesError(
            f"{context(region, period)}: no scenes between {period.start} and {period.end}; {have}. "
            f"Adjust regions.{region}.periods.{period.name} or the imagery inputs."
        )
    return sorted(chosen, key=lambda s: (s.date, s.id))


def get_source(
    region_id: str,
    region: Mapping[str, Any],
    imagery: Mapping[str, Any] | None = None,
    *,
    workdir: str | Path = ".",
    cache_root: str | Path | None = None,
) -> Source:
    """The adapter for a region's ``source`` (``regions.<id>.source``).

    ``imagery`` is the top-level ``imagery`` config section (defaults filled by the
    schema); ``cache_root`` the tile cache (default ``imagery.cache_dir``). Demo regions
    are local regions whose inputs the generator wrote.
    """
    imagery = dict(imagery or {})
    workdir = Path(workdir)
    source = region["source"]
    if source == "local":
        from karstflow.sources.local import LocalSource

        return LocalSource.from_config(region_id, region, imagery, workdir=workdir)
    cache = Path(cache_root) if cache_root is not None else workdir / imagery.get("cache_dir", "resources")
    if source == "stac":
        from karstflow.sources.stac import StacSource

        return StacSource.from_config(region_id, region, imagery, cache_root=cache)
    if source == "earthengine":
        from karstflow.sources.earthengine import EarthEngineSource

        return EarthEngineSource.from_config(region_id, region, imagery, cache_root=cache)
    raise ValueError(f"config key regions.{region_id}.source: unknown source {source!r}")
