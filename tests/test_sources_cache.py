"""Tile cache (reruns, interruptions, corruption), the fetch layer's date tables, harmonisation."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from karstflow.grid import RegionGrid
from karstflow.sources import NoScenesError, Period
from karstflow.sources.cache import CacheKey, TileCache, tiles_for
from karstflow.sources.fetch import Acquisition, RemoteSource, write_date_table, write_tile
from karstflow.sources.harmonise import HarmonisationError, boa_add_offset, harmonise_dn, parse_baseline, to_reflectance
from karstflow.sources.local import read_date_table
from karstflow.sources.rasters import load_stack

GRID = RegionGrid.from_bounds("EPSG:32650", 10, (500000, 2900000, 500800, 2900500))  # 80 x 50 px
KEY = CacheKey("stac", "sentinel-2-l2a", "epsg32650_10m_64px_x781_y4531", "20220310")


def _fetcher(calls: list, fail_after_bytes: int | None = None):
    tile = tiles_for(GRID, 64)[0]

    def fetch(path: Path):
        calls.append(path)
        data = np.full((2, 64, 64), len(calls), dtype=np.uint16)
        write_tile(path, data, tile, ["B4", "SCL"])
        if fail_after_bytes is not None:
            path.write_bytes(path.read_bytes()[:fail_after_bytes])
            raise ConnectionError("connection reset mid-download")
        return {"items": ["S2A_X"], "request": {"tile": tile.id}}

    return fetch


def test_a_rerun_never_fetches_what_the_cache_holds(tmp_path):
    cache = TileCache(tmp_path)
    calls: list = []
    entry, fetched = cache.get_or_fetch(KEY, _fetcher(calls))
    assert fetched and len(calls) == 1
    assert entry["file"] == KEY.relpath and entry["bytes"] == cache.path(KEY).stat().st_size
    assert entry["items"] == ["S2A_X"] and entry["fetched_at"] and len(entry["sha256"]) == 64
    again, fetched = TileCache(tmp_path).get_or_fetch(KEY, _fetcher(calls))
    assert not fetched and len(calls) == 1 and again == entry
    assert cache.manifest() == [entry] and cache.manifest("stac", "sentinel-2-l2a") == [entry]


def test_an_interrupted_fetch_leaves_nothing_that_looks_complete(tmp_path):
    cache = TileCache(tmp_path)
    with pytest.raises(ConnectionError):
        cache.get_or_fetch(KEY, _fetcher([], fail_after_bytes=300))
    folder = cache.path(KEY).parent
    assert not cache.path(KEY).exists() and not cache.sidecar(KEY).exists()
    assert list(folder.iterdir()) == []  # no temporary file left behind either
    calls: list = []
    _, fetched = cache.get_or_fetch(KEY, _fetcher(calls))
    assert fetched and len(calls) == 1


def test_a_file_without_its_manifest_entry_is_fetched_again(tmp_path):
    cache = TileCache(tmp_path)
    cache.get_or_fetch(KEY, _fetcher([]))
    cache.sidecar(KEY).unlink()  # e.g. killed between the rename and the entry
    calls: list = []
    _, fetched = cache.get_or_fetch(KEY, _fetcher(calls))
    assert fetched and len(calls) == 1


def test_a_cached_file_whose_checksum_fails_is_fetched_again(tmp_path, caplog):
    cache = TileCache(tmp_path)
    cache.get_or_fetch(KEY, _fetcher([]))
    raw = bytearray(cache.path(KEY).read_bytes())
    raw[-10] ^= 0xFF  # same size, one flipped byte
    cache.path(KEY).write_bytes(bytes(raw))
    calls: list = []
    entry, fetched = cache.get_or_fetch(KEY, _fetcher(calls))
    assert fetched and len(calls) == 1
    assert "checksum" in caplog.text
    assert json.loads(cache.sidecar(KEY).read_text())["sha256"] == entry["sha256"]


def test_tiles_form_a_lattice_shared_by_regions():
    tiles = tiles_for(GRID, 64)
    assert [t.id for t in tiles] == [f"epsg32650_10m_64px_x{ix}_y{iy}" for iy in (4532, 4531) for ix in (781, 782)]
    other = RegionGrid.from_bounds("EPSG:32650", 10, (500100, 2900100, 500200, 2900200))
    assert {t.id for t in tiles_for(other, 64)} <= {t.id for t in tiles}
    for t in tiles:
        assert t.grid.shape == (64, 64) and t.bounds[0] % 640 == 0


class _FakeRemote(RemoteSource):
    """A remote source whose "server" is a dict of arrays; counts fetches."""

    name = "fake"
    product = "s2"

    def __init__(self, *a, dates=(), **kw):
        super().__init__(*a, **kw)
        self.dates = list(dates)
        self.calls = 0

    def search(self, period, grid):
        return [
            Acquisition(d, [f"item-{d}"], [{"id": f"item-{d}", "processing_baseline": "04.00", "cloud_cover_pct": 5.0}])
            for d in self.dates
            if period.contains(d)
        ]

    def fetch_tile(self, acq, tile, path):
        self.calls += 1
        yy, xx = np.mgrid[0:64, 0:64]
        refl = np.stack([(500 + xx + yy + acq.date.month).astype(np.uint16)] * len(self.bands))
        scl = np.full((1, 64, 64), 4, np.uint16)
        write_tile(path, np.concatenate([refl, scl]), tile, [*self.bands, "SCL"])
        return {"items": acq.meta}


def test_remote_scenes_go_through_the_cache_and_a_date_table(tmp_path):
    dates = [dt.date(2022, 3, 1), dt.date(2022, 4, 1)]
    period = Period("spring", dt.date(2022, 3, 1), dt.date(2022, 5, 31))
    src = _FakeRemote("r", tmp_path / "resources", bands=("B4", "B8"), tile_px=64, dates=dates)
    scenes = src.scenes(period, GRID)
    assert src.calls == 8 == src.fetched  # 2 dates x 4 tiles
    assert all(len(s.layers["B4"]) == 4 for s in scenes)
    table = tmp_path / "resources" / "fetched" / "r" / "s2_spring.csv"
    write_date_table(scenes, table)
    back = read_date_table(table)
    assert [s.date for s in back] == dates and back[0].meta["boa_add_offset"] == 0
    ds = load_stack(back, GRID, ["B4", "B8"], chunk_px=32)
    assert np.isfinite(ds["reflectance"].sel(band="B4").values).all() and ds["clear"].values.all()
    again = _FakeRemote("r", tmp_path / "resources", bands=("B4", "B8"), tile_px=64, dates=dates)
    again.scenes(period, GRID)
    assert again.calls == 0 and again.reused == 8
    with pytest.raises(NoScenesError, match=r"region r, period autumn: the fake source has no s2 scenes"):
        again.scenes(Period("autumn", dt.date(2022, 9, 1), dt.date(2022, 11, 30)), GRID)


@pytest.mark.parametrize(
    ("meta", "offset"),
    [
        ({"boa_add_offset": -1000}, -1000),
        ({"boa_add_offset": 0, "s2:processing_baseline": "04.00"}, 0),  # explicit value wins
        ({"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": True}, 0),
        ({"s2:processing_baseline": "04.00", "earthsearch:boa_offset_applied": False}, -1000),
        ({"s2:processing_baseline": "03.01"}, 0),
        ({"s2:processing_baseline": "05.09"}, -1000),
        ({"PROCESSING_BASELINE": "N0400"}, -1000),
        ({"processing_baseline": "02.14", "boa_add_offset": float("nan")}, 0),
    ],
)
def test_offset_is_decided_from_item_metadata(meta, offset):
    assert boa_add_offset(meta) == offset


def test_harmonisation_helpers():
    assert parse_baseline("04.00") == (4, 0) and parse_baseline("N0509") == (5, 9) and parse_baseline(4.0) == (4, 0)
    with pytest.raises(HarmonisationError, match="S2B_X: cannot tell"):
        boa_add_offset({"datetime": "2023-01-01"}, item="S2B_X")
    dn = np.array([0, 500, 1000, 2500], dtype=np.uint16)
    assert harmonise_dn(dn, -1000).tolist() == [0, 1, 1, 1500]
    refl = to_reflectance(dn, -1000)
    assert np.isnan(refl[0]) and refl[3] == pytest.approx(0.15)
