"""The tile cache under ``resources/``: one GeoTIFF per source, product, tile and date.

Layout: ``{root}/{source}/{product}/{tile}/{date}.tif`` with a sidecar
``{date}.tif.json`` holding the manifest entry: key, file size and SHA-256, when it was
fetched and how long it took, and what was asked for (asset or image ids, the request's
grid and bands, item metadata such as processing baselines). :meth:`TileCache.manifest`
gathers the entries.

Guarantees:

* a rerun never fetches what the cache holds (:meth:`TileCache.get_or_fetch` returns the
  cached entry when the file and its sidecar exist and the checksum matches);
* an interrupted fetch never leaves a file that looks complete: the pixels are written
  to a temporary name and renamed into place only when complete, and the sidecar (which
  makes the entry count) is written after that, also atomically;
* a cached file whose checksum fails is fetched again (and logged).

Tiles are cells of a fixed lattice of the region CRS at the region resolution,
``tile_px`` pixels square, anchored at the CRS origin (:func:`tiles_for`), so regions
sharing a CRS and resolution share tiles.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from karstflow.grid import RegionGrid

log = logging.getLogger(__name__)

CHECKSUM = "sha256"


@dataclass(frozen=True)
class CacheKey:
    """What a cached file is: ``date`` is ``YYYYMMDD`` or ``static`` (a DEM)."""

    source: str
    product: str
    tile: str
    date: str

    def __post_init__(self) -> None:
        for name in ("source", "product", "tile", "date"):
            value = getattr(self, name)
            if not value or "/" in value or "\\" in value or value in (".", ".."):
                raise ValueError(f"cache key {name} must be a path-safe name, found {value!r}")

    @property
    def relpath(self) -> str:
        return f"{self.source}/{self.product}/{self.tile}/{self.date}.tif"


@dataclass(frozen=True)
class CacheTile:
    """Cell (ix, iy) of the lattice of ``size_px`` pixels at ``resolution`` in ``crs``."""

    crs: str
    resolution: float
    size_px: int
    ix: int
    iy: int

    @property
    def id(self) -> str:
        from pyproj import CRS

        epsg = CRS.from_user_input(self.crs).to_epsg()
        crs = f"epsg{epsg}" if epsg else "crs" + hashlib.sha1(self.crs.encode()).hexdigest()[:8]
        return f"{crs}_{self.resolution:g}m_{self.size_px}px_x{self.ix}_y{self.iy}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        edge = self.size_px * self.resolution
        return (self.ix * edge, self.iy * edge, (self.ix + 1) * edge, (self.iy + 1) * edge)

    @property
    def grid(self) -> RegionGrid:
        return RegionGrid(crs=self.crs, resolution=self.resolution, bounds=self.bounds)


def tiles_for(grid: RegionGrid, tile_px: int) -> list[CacheTile]:
    """Lattice tiles that overlap ``grid`` (row-major from the north-west)."""
    if tile_px < 16:
        raise ValueError(f"tile size must be at least 16 px, found {tile_px}")
    edge = tile_px * grid.resolution
    xmin, ymin, xmax, ymax = grid.bounds
    eps = grid.resolution * 1e-6
    ix0, ix1 = math.floor((xmin + eps) / edge), math.floor((xmax - eps) / edge)
    iy0, iy1 = math.floor((ymin + eps) / edge), math.floor((ymax - eps) / edge)
    return [
        CacheTile(grid.crs, grid.resolution, tile_px, ix, iy)
        for iy in range(iy1, iy0 - 1, -1)
        for ix in range(ix0, ix1 + 1)
    ]


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class TileCache:
    """The tile cache rooted at ``root`` (``imagery.cache_dir``, default ``resources``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: CacheKey) -> Path:
        return self.root / key.relpath

    def sidecar(self, key: CacheKey) -> Path:
        p = self.path(key)
        return p.with_name(p.name + ".json")

    def lookup(self, key: CacheKey) -> dict[str, Any] | None:
        """The manifest entry of ``key`` if the cache holds a verified file, else None.

        A file whose size or checksum does not match its entry is removed (with its
        entry) and logged, so that it is fetched again.
        """
        data, side = self.path(key), self.sidecar(key)
        if not side.exists():
            if data.exists():
                log.info("cache: %s has no manifest entry (interrupted fetch?); fetching it again", data)
            return None
        try:
            entry = json.loads(side.read_text())
        except (OSError, json.JSONDecodeError):
            log.warning("cache: unreadable manifest entry %s; fetching again", side)
            side.unlink(missing_ok=True)
            return None
        if not data.exists():
            log.info("cache: %s is missing; fetching it again", data)
            side.unlink(missing_ok=True)
            return None
        size = data.stat().st_size
        if size != entry.get("bytes") or sha256_of(data) != entry.get(CHECKSUM):
            log.warning("cache: checksum of %s does not match its manifest entry; fetching it again", data)
            data.unlink(missing_ok=True)
            side.unlink(missing_ok=True)
            return None
        return entry

    def get_or_fetch(self, key: CacheKey, fetch: Callable[[Path], Mapping[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The entry of ``key``, calling ``fetch(tmp_path)`` only if the cache lacks it.

        ``fetch`` writes the GeoTIFF to the path it is given and returns what the
        manifest records about the request (ids, parameters, metadata). Returns
        ``(entry, fetched)``.
        """
        entry = self.lookup(key)
        if entry is not None:
            return entry, False
        return self.store(key, fetch), True

    def store(self, key: CacheKey, fetch: Callable[[Path], Mapping[str, Any]]) -> dict[str, Any]:
        """Fetch into a temporary file, rename it into place, then write the entry."""
        from karstflow.io import atomic_path, write_json

        target = self.path(key)
        t0 = time.perf_counter()
        with atomic_path(target, suffix=".tif") as tmp:
            info = dict(fetch(tmp))
            if not tmp.exists():
                raise RuntimeError(f"cache: fetching {key.relpath} wrote no file")
            digest, size = sha256_of(tmp), tmp.stat().st_size
        entry = {
            "key": {"source": key.source, "product": key.product, "tile": key.tile, "date": key.date},
            "file": key.relpath,
            "bytes": size,
            CHECKSUM: digest,
            "fetched_at": _now(),
            "fetch_seconds": round(time.perf_counter() - t0, 3),
            **info,
        }
        write_json(entry, self.sidecar(key))
        log.info("cache: stored %s (%.1f MB, %.1f s)", key.relpath, size / 1e6, entry["fetch_seconds"])
        return entry

    def manifest(self, source: str | None = None, product: str | None = None) -> list[dict[str, Any]]:
        """Every manifest entry under the root (optionally of one source / product)."""
        base = self.root
        if source:
            base = base / source
            if product:
                base = base / product
        if not base.exists():
            return []
        entries = []
        for side in sorted(base.rglob("*.tif.json")):
            try:
                entries.append(json.loads(side.read_text()))
            except (OSError, json.JSONDecodeError):
                continue
        return entries


def relative_to(path: str | Path, start: str | Path) -> str:
    """``path`` relative to folder ``start`` (for date tables that move with the cache)."""
    return os.path.relpath(Path(path).resolve(), Path(start).resolve())
