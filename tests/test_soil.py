"""Soil grids: Saxton & Rawls (2006), SoilGrids conversions and depth weights, SoilGrids VRTs over HTTP."""

from __future__ import annotations

import functools
import http.server
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from karstflow.grid import RegionGrid
from karstflow.soil import (
    OM_PER_SOC,
    SOILGRIDS_CRS,
    SOILGRIDS_PROPERTIES,
    STANDARD_DEPTHS,
    depth_weights,
    depths_down_to,
    read_soil_bands,
    read_soilgrids,
    saxton_rawls_2006,
    soilgrids_to_soil_grids,
    soilgrids_vrt_urls,
    to_conventional,
)

# Saxton & Rawls (2006) Table 3 (OM 2.5 %, no salinity/gravel/compaction): sand %, clay %,
# wilting point (1500 kPa) and field capacity (33 kPa), % volume, rounded to whole percent.
SR2006_TABLE = [
    ("sand", 88, 5, 5, 10),
    ("sandy loam", 65, 10, 8, 18),
    ("loam", 40, 20, 14, 28),
    ("silt loam", 20, 15, 11, 31),
    ("sandy clay loam", 60, 25, 17, 27),
    ("clay loam", 30, 35, 22, 36),
]


@pytest.mark.parametrize(("name", "sand", "clay", "wp", "fc"), SR2006_TABLE)
def test_saxton_rawls_2006_table_values(name, sand, clay, wp, fc):
    r = saxton_rawls_2006(sand / 100, clay / 100, 2.5)
    assert round(100 * r["theta_1500"]) == wp, name
    assert round(100 * r["theta_33"]) == fc, name
    assert r["paw"] == pytest.approx(r["theta_33"] - r["theta_1500"])
    assert abs(r["paw"] - (fc - wp) / 100) <= 0.01  # the table's AW within its rounding


def test_saxton_rawls_2006_worked_values():
    # S = C = 0.20, OM = 2.5 %: theta_1500 = 13.8 %, theta_33 = 32.1 % (eqs. 1-2)
    r = saxton_rawls_2006(np.array([0.2]), np.array([0.2]), np.array([2.5]))
    assert r["theta_1500"][0] == pytest.approx(0.1365, abs=5e-5)
    assert r["theta_33"][0] == pytest.approx(0.3209, abs=5e-5)


def test_soilgrids_conversion_factors_and_units():
    # Poggio et al. (2021) / ISRIC FAQ: mapped units and factors to conventional units
    assert SOILGRIDS_PROPERTIES["sand"]["mapped_units"] == "g/kg" and SOILGRIDS_PROPERTIES["sand"]["factor"] == 10
    assert SOILGRIDS_PROPERTIES["soc"]["mapped_units"] == "dg/kg" and SOILGRIDS_PROPERTIES["soc"]["factor"] == 10
    assert SOILGRIDS_PROPERTIES["bdod"]["mapped_units"] == "cg/cm3" and SOILGRIDS_PROPERTIES["bdod"]["factor"] == 100
    assert SOILGRIDS_PROPERTIES["cfvo"]["mapped_units"] == "cm3/dm3" and SOILGRIDS_PROPERTIES["cfvo"]["factor"] == 10
    assert list(STANDARD_DEPTHS) == ["0-5cm", "5-15cm", "15-30cm", "30-60cm", "60-100cm", "100-200cm"]
    assert to_conventional(400.0, "g/kg", "sand", source="t", variable="sand_0-5cm")[0] == pytest.approx(40.0)
    # 150 dg/kg = 15 g/kg = 1.5 %
    assert to_conventional(150.0, "dg/kg", "soc", source="t", variable="soc_0-5cm")[0] == pytest.approx(1.5)
    assert to_conventional(120.0, "cm3/dm3", "cfvo", source="t", variable="cfvo_0-5cm")[0] == pytest.approx(12.0)
    with pytest.raises(ValueError, match=r"tile\.tif: variable 'soc_0-5cm' has units 'ppm'"):
        to_conventional(1.0, "ppm", "soc", source="tile.tif", variable="soc_0-5cm")
    with pytest.raises(ValueError, match=r"tile\.tif: variable 'sand_0-5cm' has no units"):
        to_conventional(1.0, None, "sand", source="tile.tif", variable="sand_0-5cm")


def test_depth_weights():
    assert depth_weights(30) == pytest.approx({"0-5cm": 5 / 30, "5-15cm": 10 / 30, "15-30cm": 15 / 30})
    w = depth_weights(45)
    assert w == pytest.approx({"0-5cm": 5 / 45, "5-15cm": 10 / 45, "15-30cm": 15 / 45, "30-60cm": 15 / 45})
    assert sum(depth_weights(200).values()) == pytest.approx(1.0)
    assert depths_down_to(45) == ["0-5cm", "5-15cm", "15-30cm", "30-60cm"]
    with pytest.raises(ValueError, match="depth_cm must be in"):
        depth_weights(250)


GRID = RegionGrid(crs="EPSG:32648", resolution=250.0, bounds=(500000.0, 1500000.0, 501000.0, 1500500.0))
DEPTHS = ("0-5cm", "5-15cm", "15-30cm")


def _raw(layers: dict[str, float], grid: RegionGrid = GRID, units: dict[str, str] | None = None) -> xr.Dataset:
    units = units or {"sand": "g/kg", "silt": "g/kg", "clay": "g/kg", "soc": "dg/kg", "cfvo": "cm3/dm3"}
    c = grid.coords()
    ds = xr.Dataset(coords={"y": c["y"], "x": c["x"]})
    for name, v in layers.items():
        ds[name] = xr.DataArray(np.full(grid.shape, v), dims=("y", "x"), attrs={"units": units[name.split("_")[0]]})
    ds.attrs["source"] = "test layers"
    return ds.rio.write_crs(grid.crs)


LAYERS = {
    # sand, silt, clay g/kg; soc dg/kg, per depth
    **{f"sand_{d}": v for d, v in zip(DEPTHS, (400, 300, 200), strict=True)},
    **{f"silt_{d}": v for d, v in zip(DEPTHS, (400, 450, 500), strict=True)},
    **{f"clay_{d}": v for d, v in zip(DEPTHS, (200, 250, 300), strict=True)},
    **{f"soc_{d}": v for d, v in zip(DEPTHS, (200, 100, 50), strict=True)},
}


def test_soilgrids_to_soil_grids_weighted_means_and_pawc():
    out = soilgrids_to_soil_grids(_raw(LAYERS), depth_cm=30, soil_depth_mm=800.0, source="test layers")
    w = np.array([5, 10, 15]) / 30
    assert float(out["sand_pct"][0, 0]) == pytest.approx(np.dot(w, [40, 30, 20]), rel=1e-6)
    assert float(out["clay_pct"][0, 0]) == pytest.approx(np.dot(w, [20, 25, 30]), rel=1e-6)
    assert float(out["organic_carbon_pct"][0, 0]) == pytest.approx(np.dot(w, [2.0, 1.0, 0.5]), rel=1e-6)
    # PAW per layer by eqs. 1-2, OM = 1.724 SOC, then depth-weighted
    paws = [
        saxton_rawls_2006(s, c, OM_PER_SOC * soc)["paw"]
        for s, c, soc in zip((0.4, 0.3, 0.2), (0.2, 0.25, 0.3), (2.0, 1.0, 0.5), strict=True)
    ]
    assert float(out["pawc"][0, 0]) == pytest.approx(np.dot(w, paws), rel=1e-6)
    assert 0.1 < float(out["pawc"][0, 0]) < 0.25
    assert "1.724" in out["pawc"].attrs["method"] and "no coarse-fragment" in out["pawc"].attrs["method"]
    assert out.attrs["soil_depth_is_constant"] == 1 and "constant 800 mm" in out.attrs["soil_depth_source"]
    assert float(out["soil_depth_mm"][0, 0]) == 800.0
    for v in ("sand_pct", "silt_pct", "clay_pct", "organic_carbon_pct"):
        assert out[v].attrs["units"] == "%"
    assert out["pawc"].attrs["units"] == "1"


def test_soilgrids_to_soil_grids_cfvo_raster_depth_and_missing_layer():
    layers = dict(LAYERS, **{f"cfvo_{d}": 200.0 for d in DEPTHS})  # 20 % gravel by volume
    depth = GRID.data_array(np.full(GRID.shape, 650.0), name="soil_depth")
    depth.attrs["source"] = "depth_to_bedrock.tif"
    plain = soilgrids_to_soil_grids(_raw(LAYERS), depth_cm=30, soil_depth_mm=800.0, source="t")
    out = soilgrids_to_soil_grids(_raw(layers), depth_cm=30, soil_depth_mm=depth, source="t")
    assert float(out["pawc"][0, 0]) == pytest.approx(0.8 * float(plain["pawc"][0, 0]), rel=1e-6)
    assert out.attrs["soil_depth_is_constant"] == 0 and "depth_to_bedrock.tif" in out.attrs["soil_depth_source"]
    assert float(out["soil_depth_mm"][1, 2]) == 650.0
    short = {k: v for k, v in LAYERS.items() if k != "clay_15-30cm"}
    with pytest.raises(ValueError, match=r"test layers: missing layer 'clay_15-30cm'"):
        soilgrids_to_soil_grids(_raw(short), depth_cm=30, soil_depth_mm=800.0, source="t")


def test_read_soil_bands_from_tiles(tmp_path):
    path = tmp_path / "soil.tif"
    names = list(LAYERS)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=GRID.width,
        height=GRID.height,
        count=len(names),
        dtype="float32",
        crs=GRID.crs,
        transform=GRID.transform,
    ) as dst:
        for i, name in enumerate(names, start=1):
            dst.write(np.full(GRID.shape, LAYERS[name], np.float32), i)
            dst.set_band_description(i, name)
            dst.update_tags(i, units="dg/kg" if name.startswith("soc") else "g/kg")
    raw = read_soil_bands([path], GRID)
    assert raw["soc_0-5cm"].attrs["units"] == "dg/kg"
    out = soilgrids_to_soil_grids(raw, depth_cm=30, soil_depth_mm=1000.0, source=str(path))
    ref = soilgrids_to_soil_grids(_raw(LAYERS), depth_cm=30, soil_depth_mm=1000.0, source="ref")
    for v in ("sand_pct", "clay_pct", "organic_carbon_pct", "pawc"):
        np.testing.assert_allclose(out[v].values, ref[v].values, rtol=1e-6)
    bad = tmp_path / "bad.tif"
    with rasterio.open(
        bad, "w", driver="GTiff", width=4, height=2, count=1, dtype="float32", crs=GRID.crs, transform=GRID.transform
    ) as dst:
        dst.write(np.zeros((2, 4), np.float32), 1)
        dst.set_band_description(1, "sand_0-5cm")
    with pytest.raises(ValueError, match=r"bad\.tif: band 1 \(sand_0-5cm\) has no 'units' tag"):
        read_soil_bands([bad], GRID)


# --------------------------------------------------------------------------------------
# SoilGrids VRT layout served over http://127.0.0.1
# --------------------------------------------------------------------------------------


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with HTTP range requests (GDAL /vsicurl/ reads byte ranges)."""

    requested: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def send_head(self):
        type(self).requested.append(self.path)
        rng = self.headers.get("Range")
        path = self.translate_path(self.path)
        if rng is None or not os.path.isfile(path):
            return super().send_head()
        m = re.match(r"bytes=(\d+)-(\d*)", rng)
        size = os.path.getsize(path)
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        n = getattr(self, "_remaining", None)
        if n is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(n))
        self._remaining = None


def _write_soilgrids_layout(root: Path, prop: str, depth: str, x0: float, y0: float, tiles: list[np.ndarray]) -> None:
    """``{prop}/{prop}_{depth}_mean.vrt`` + tiles in ``{prop}/{prop}_{depth}_mean/`` (side by side in x)."""
    stem = f"{prop}_{depth}_mean"
    (root / prop / stem).mkdir(parents=True)
    wkt = CRS.from_proj4(SOILGRIDS_CRS).to_wkt()
    h, w = tiles[0].shape
    sources = []
    for i, arr in enumerate(tiles):
        name = f"tileSG-001-{i + 1:03d}_1-1.tif"
        with rasterio.open(
            root / prop / stem / name,
            "w",
            driver="COG",
            width=w,
            height=h,
            count=1,
            dtype="int16",
            crs=wkt,
            transform=Affine(250.0, 0.0, x0 + i * w * 250.0, 0.0, -250.0, y0),
            nodata=-32768,
        ) as dst:
            dst.write(arr.astype(np.int16), 1)
        sources.append(
            f'<ComplexSource><SourceFilename relativeToVRT="1">{stem}/{name}</SourceFilename>'
            f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
            f'<DstRect xOff="{i * w}" yOff="0" xSize="{w}" ySize="{h}"/><NODATA>-32768</NODATA></ComplexSource>'
        )
    from xml.sax.saxutils import escape

    (root / prop / f"{stem}.vrt").write_text(
        f'<VRTDataset rasterXSize="{w * len(tiles)}" rasterYSize="{h}"><SRS>{escape(wkt)}</SRS>'
        f"<GeoTransform>{x0!r}, 250.0, 0.0, {y0!r}, 0.0, -250.0</GeoTransform>"
        f'<VRTRasterBand dataType="Int16" band="1"><NoDataValue>-32768</NoDataValue>{"".join(sources)}'
        "</VRTRasterBand></VRTDataset>"
    )


@pytest.fixture()
def soilgrids_server(tmp_path):
    handler = functools.partial(_RangeHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _RangeHandler.requested = []
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_soilgrids_vrt_urls_layout():
    urls = soilgrids_vrt_urls("https://files.isric.org/soilgrids/latest/data/", ["sand", "soc"], ["0-5cm"])
    assert urls == {
        "sand_0-5cm": "https://files.isric.org/soilgrids/latest/data/sand/sand_0-5cm_mean.vrt",
        "soc_0-5cm": "https://files.isric.org/soilgrids/latest/data/soc/soc_0-5cm_mean.vrt",
    }
    with pytest.raises(ValueError, match="unknown SoilGrids depth '0-10cm'"):
        soilgrids_vrt_urls("https://x", ["sand"], ["0-10cm"])


def test_read_soilgrids_over_http_homolosine(soilgrids_server):
    root, base = soilgrids_server
    # a 500 m grid in Homolosine near 10°E 45°N, on the 250 m tiles' lattice (2 x 2 pixels per cell)
    x, y = Transformer.from_crs("EPSG:4326", SOILGRIDS_CRS, always_xy=True).transform(10.0, 45.0)
    x0, y0 = round(x / 1000) * 1000.0, round(y / 1000) * 1000.0
    rng = np.random.default_rng(7)
    tiles = [rng.integers(100, 800, size=(8, 8)) for _ in range(2)]
    tiles[0][0, 0] = -32768  # nodata: the average uses the other 3 pixels
    _write_soilgrids_layout(root, "sand", "0-5cm", x0, y0, tiles)
    grid = RegionGrid(crs=SOILGRIDS_CRS, resolution=500.0, bounds=(x0, y0 - 2000.0, x0 + 4000.0, y0))
    raw = read_soilgrids(base, grid, properties=["sand"], depths=["0-5cm"], resampling="average")
    full = np.hstack(tiles).astype(float)
    full[full == -32768] = np.nan
    expected = np.nanmean(full.reshape(4, 2, 8, 2).swapaxes(1, 2).reshape(4, 8, 4), axis=2)
    np.testing.assert_allclose(raw["sand_0-5cm"].values, expected, rtol=1e-6)
    assert raw["sand_0-5cm"].attrs["units"] == "g/kg"
    assert any(p.endswith("sand/sand_0-5cm_mean.vrt") for p in _RangeHandler.requested)
    assert any("sand_0-5cm_mean/tileSG-001-002_1-1.tif" in p for p in _RangeHandler.requested)
    with pytest.raises(ValueError, match=r"SoilGrids layer clay_0-5cm: cannot open http://127\.0\.0\.1"):
        read_soilgrids(base, grid, properties=["clay"], depths=["0-5cm"])
