"""Local files: per-date GeoTIFFs listed in a date table, time stacks, or SAFE products.

Three layouts (``regions.<id>.inputs.imagery``):

* **date table** (``date_table: path/to/scenes.csv``): one row per file, columns
  ``date`` (ISO) and ``file`` (relative to the table's folder), optionally
  ``processing_baseline``, ``boa_add_offset``, ``cloud_cover_pct``, ``scene_id``,
  ``tile``. Each file holds several bands named in its GeoTIFF band descriptions (or
  ``band_names``), e.g. ``B2 ... B12, SCL``. Rows of one date are mosaicked. This is the
  demo's ``s2/scenes.csv`` layout and the layout of the tile cache's date tables, so the
  ``demo`` source and the fetched ``stac``/``earthengine`` scenes are read here too.
* **time stacks** (``stacks: {NDVI: ndvi.tif}``, ``cloud_mask: cloud_mask.tif``): one
  file per band whose band *i* is date *i*; dates from the band descriptions (ISO
  timestamps) or a JSON list (``dates``). The cloud mask stack is non-zero where not
  clear (s2cloudless convention). Values are used as they are.
* **SAFE products** (``safe: downloads/S2*_MSIL2A_*.zip`` or a list of folders, zips and
  globs): Sentinel-2 L2A products as the Copernicus Data Space delivers them, read in
  place (zips through ``/vsizip/``) by :mod:`karstflow.sources.safe` into the same
  scenes a date table gives, harmonised per product from its metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from karstflow.grid import RegionGrid
from karstflow.sources import (
    S2_BANDS,
    ImageryError,
    Layer,
    MissingBandError,
    Period,
    Scene,
    context,
    select_period,
)

log = logging.getLogger(__name__)

#: Columns of a date table that are carried into each scene's metadata.
META_COLUMNS = (
    "processing_baseline",
    "boa_add_offset",
    "cloud_cover_pct",
    "scene_id",
    "tile",
    "source_items",
    "sensor",
    "platform",
)


def band_descriptions(path: str | Path) -> list[str | None]:
    import rasterio

    with rasterio.open(path) as src:
        return list(src.descriptions)


def _parse_date(value: Any, where: str) -> dt.date:
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ImageryError(f"{where}: {text!r} is not an ISO date (YYYY-MM-DD...)") from None


def read_date_table(
    path: str | Path, *, band_names: Sequence[str] | None = None, encoding: str = "s2-l2a-dn"
) -> list[Scene]:
    """Scenes of a date table (see the module docstring); one scene per date."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"date table not found: {path}")
    table = pd.read_csv(path, dtype={"processing_baseline": str})
    for col in ("date", "file"):
        if col not in table.columns:
            raise ImageryError(f"{path}: date table needs a {col!r} column; found columns {list(table.columns)}")
    base = path.parent
    names_cache: dict[str, list[str]] = {}
    by_date: dict[dt.date, list[dict[str, Any]]] = {}
    for i, row in enumerate(table.to_dict("records"), start=2):
        day = _parse_date(row["date"], f"{path} line {i}")
        file = Path(str(row["file"]))
        file = file if file.is_absolute() else base / file
        if not file.exists():
            raise FileNotFoundError(f"{path} line {i}: file not found: {file}")
        key = str(file)
        if key not in names_cache:
            if band_names:
                names_cache[key] = list(band_names)
            else:
                desc = band_descriptions(file)
                if not all(desc):
                    raise MissingBandError(
                        f"{file}: some bands have no description ({desc}); name them in the GeoTIFF band "
                        "descriptions or set inputs.imagery.band_names"
                    )
                names_cache[key] = [str(d) for d in desc]
        meta = {k: row[k] for k in META_COLUMNS if k in row and not _missing(row[k])}
        by_date.setdefault(day, []).append({"file": key, "bands": names_cache[key], "meta": meta})
    scenes = []
    for day in sorted(by_date):
        rows = by_date[day]
        decisive = {(r["meta"].get("boa_add_offset"), r["meta"].get("processing_baseline")) for r in rows}
        if encoding == "s2-l2a-dn" and len(decisive) > 1:
            raise ImageryError(
                f"{path}: the files of {day} disagree on processing baseline / BOA offset "
                f"({sorted(map(str, decisive))}); "
                "harmonise them before listing them under one date"
            )
        layers: dict[str, list[Layer]] = {}
        for r in rows:
            for idx, name in enumerate(r["bands"], start=1):
                layers.setdefault(name, []).append(Layer(r["file"], idx))
        meta = dict(rows[0]["meta"])
        if len(rows) > 1:
            meta["files"] = len(rows)
            ccs = [r["meta"]["cloud_cover_pct"] for r in rows if "cloud_cover_pct" in r["meta"]]
            if ccs:
                meta["cloud_cover_pct"] = float(sum(ccs) / len(ccs))
        sid = str(meta.pop("scene_id", "")) or f"{day.isoformat()}"
        scenes.append(
            Scene(id=sid, date=day, layers={k: tuple(v) for k, v in layers.items()}, meta=meta, encoding=encoding)
        )
    return scenes


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def read_stacks(
    stacks: Mapping[str, str | Path], *, cloud_mask: str | Path | None = None, dates: str | Path | None = None
) -> list[Scene]:
    """Scenes of per-band time stacks (band *i* = date *i*), values used as they are."""
    import rasterio

    if not stacks:
        raise ImageryError("inputs.imagery.stacks: name at least one band stack")
    counts = {}
    for name, p in {**stacks, **({"cloud_mask": cloud_mask} if cloud_mask else {})}.items():
        if not Path(p).exists():
            raise FileNotFoundError(f"inputs.imagery: {name} stack not found: {p}")
        with rasterio.open(p) as src:
            counts[name] = src.count
    if len(set(counts.values())) != 1:
        raise ImageryError(f"inputs.imagery: the stacks have different numbers of dates (bands): {counts}")
    n = next(iter(counts.values()))
    if dates is not None:
        times = json.loads(Path(dates).read_text())
        where = str(dates)
    else:
        first = next(iter(stacks.values()))
        times = band_descriptions(first)
        where = f"{first} band descriptions"
        if not all(times):
            raise ImageryError(
                f"{first}: bands carry no dates in their descriptions; "
                "set inputs.imagery.dates (a JSON list of ISO times)"
            )
    if len(times) != n:
        raise ImageryError(f"{where}: {len(times)} dates for {n} bands")
    scenes = []
    for i, t in enumerate(times, start=1):
        layers = {name: (Layer(str(p), i),) for name, p in stacks.items()}
        if cloud_mask:
            layers["CLOUD_MASK"] = (Layer(str(cloud_mask), i),)
        scenes.append(Scene(id=str(t), date=_parse_date(t, where), layers=layers, meta={"band": i}, encoding="as-is"))
    return scenes


@dataclass
class LocalSource:
    """Scenes from local files; ``name`` is ``local`` or ``demo``."""

    region: str
    all_scenes: list[Scene] | None
    dem_file: str | None
    band_list: tuple[str, ...]
    name: str = "local"
    max_scene_cloud_pct: float = 100.0
    problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_date_table(
        cls,
        region: str,
        table: str | Path,
        *,
        dem: str | Path | None = None,
        bands: Sequence[str] = S2_BANDS,
        band_names: Sequence[str] | None = None,
        encoding: str = "s2-l2a-dn",
        name: str = "local",
        max_scene_cloud_pct: float = 100.0,
    ) -> LocalSource:
        extra = {"table": str(table), "band_names": list(band_names) if band_names else None, "encoding": encoding}
        return cls._read_later(region, extra, dem=dem, bands=bands, name=name, max_scene_cloud_pct=max_scene_cloud_pct)

    @classmethod
    def from_safe(
        cls,
        region: str,
        paths: str | Path | Sequence[str | Path],
        *,
        dem: str | Path | None = None,
        bands: Sequence[str] = S2_BANDS,
        name: str = "local",
        max_scene_cloud_pct: float = 100.0,
    ) -> LocalSource:
        """Sentinel-2 L2A SAFE folders or zips (a path, a glob or a list), read when first needed.

        See :func:`karstflow.sources.safe.read_safe_products`; ``bands`` are also the
        bands the composites carry.
        """
        items = [paths] if isinstance(paths, str | Path) else list(paths)
        extra = {"safe": [str(p) for p in items]}
        return cls._read_later(region, extra, dem=dem, bands=bands, name=name, max_scene_cloud_pct=max_scene_cloud_pct)

    @classmethod
    def _read_later(
        cls,
        region: str,
        extra: dict[str, Any],
        *,
        dem: str | Path | None,
        bands: Sequence[str],
        name: str,
        max_scene_cloud_pct: float,
    ) -> LocalSource:
        """A source whose scenes are read when first needed, from what ``extra`` names."""
        src = cls(
            region=region,
            all_scenes=None,
            dem_file=str(dem) if dem else None,
            band_list=tuple(bands),
            name=name,
            max_scene_cloud_pct=max_scene_cloud_pct,
        )
        src.extra = extra
        return src

    @classmethod
    def from_stacks(
        cls,
        region: str,
        stacks: Mapping[str, str | Path],
        *,
        cloud_mask: str | Path | None = None,
        dates: str | Path | None = None,
        dem: str | Path | None = None,
    ) -> LocalSource:
        scenes = read_stacks(stacks, cloud_mask=cloud_mask, dates=dates)
        return cls(region=region, all_scenes=scenes, dem_file=str(dem) if dem else None, band_list=tuple(stacks))

    @classmethod
    def from_config(
        cls, region_id: str, region: Mapping[str, Any], imagery: Mapping[str, Any], *, workdir: str | Path = "."
    ) -> LocalSource:
        """A ``local`` region: ``inputs.dem`` and, when it composites, ``inputs.imagery``."""
        workdir = Path(workdir)
        inputs = region.get("inputs") or {}
        dem = workdir / inputs["dem"] if inputs.get("dem") else None
        spec = inputs.get("imagery")
        cloud = float(imagery.get("max_scene_cloud_pct", 100.0))
        if not spec:
            src = cls(
                region=region_id,
                all_scenes=None,
                dem_file=str(dem) if dem else None,
                band_list=tuple(imagery.get("bands", S2_BANDS)),
            )
            src.problem = (
                f"config key regions.{region_id}.inputs.imagery: required to composite imagery "
                "(date_table, stacks or safe)"
            )
            return src
        if "safe" in spec:
            key = f"config key regions.{region_id}.inputs.imagery"
            if spec.get("band_names"):
                raise ImageryError(f"{key}.band_names: applies to date_table only (SAFE files are named by band)")
            if spec.get("encoding", "s2-l2a-dn") != "s2-l2a-dn":
                raise ImageryError(f"{key}.encoding: SAFE products hold L2A digital numbers (s2-l2a-dn)")
            safe = spec["safe"]
            items = [safe] if isinstance(safe, str) else list(safe)
            return cls.from_safe(
                region_id,
                [str(p) if Path(p).is_absolute() else str(workdir / p) for p in items],
                dem=dem,
                bands=tuple(imagery.get("bands", S2_BANDS)),
                max_scene_cloud_pct=cloud,
            )
        if "date_table" in spec:
            return cls.from_date_table(
                region_id,
                workdir / spec["date_table"],
                dem=dem,
                bands=tuple(imagery.get("bands", S2_BANDS)),
                band_names=spec.get("band_names"),
                encoding=spec.get("encoding", "s2-l2a-dn"),
                max_scene_cloud_pct=cloud,
            )
        stacks = {k: workdir / v for k, v in spec["stacks"].items()}
        mask = workdir / spec["cloud_mask"] if spec.get("cloud_mask") else None
        dates = workdir / spec["dates"] if spec.get("dates") else None
        return cls.from_stacks(region_id, stacks, cloud_mask=mask, dates=dates, dem=dem)

    @property
    def bands(self) -> tuple[str, ...]:
        return self.band_list

    def _load(self) -> list[Scene]:
        if self.problem:
            raise ImageryError(self.problem)
        if self.all_scenes is None:
            e = self.extra
            if "safe" in e:
                from karstflow.sources.safe import read_safe_products

                self.all_scenes = read_safe_products(e["safe"], bands=self.band_list)
            else:
                self.all_scenes = read_date_table(e["table"], band_names=e["band_names"], encoding=e["encoding"])
        return self.all_scenes

    def scenes(self, period: Period, grid: RegionGrid | None = None) -> list[Scene]:
        chosen = select_period(self._load(), period, self.region)
        if self.max_scene_cloud_pct < 100:
            kept = [s for s in chosen if float(s.meta.get("cloud_cover_pct", 0.0)) <= self.max_scene_cloud_pct]
            if not kept:
                raise ImageryError(
                    f"{context(self.region, period)}: all {len(chosen)} scenes exceed imagery.max_scene_cloud_pct "
                    f"({self.max_scene_cloud_pct} %)"
                )
            if len(kept) < len(chosen):
                log.info(
                    "%s: %d scenes above %.0f %% cloud cover skipped",
                    context(self.region, period),
                    len(chosen) - len(kept),
                    self.max_scene_cloud_pct,
                )
            chosen = kept
        return chosen

    def dem(self, grid: RegionGrid | None = None) -> list[str]:
        if not self.dem_file:
            raise ImageryError(f"config key regions.{self.region}.inputs.dem: required (a DEM GeoTIFF)")
        return [self.dem_file]
