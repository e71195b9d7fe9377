"""Sentinel-2 L2A SAFE products (folders and zips) as local imagery.

A SAFE-layout fixture is built from the real sen2r L2A data (Barbellino, 2 dates): per
date a product folder with the CDSE names, a minimal MTD_MSIL2A.xml and the granule JP2
files (lossless JPEG 2000) at 10, 20 and 60 m; the 2019 product is zipped. The same
pixels are written as a date table (two GeoTIFFs per date: the 10 m bands, and the 20 m
bands with SCL). The scenes, and the cloud-masked median composite and clear count that
rule imagery_composite computes from them, must be identical for both layouts.

The sen2r BOA files hold 11 bands in the order B1 B2 B3 B4 B5 B6 B7 B8 B9 B11 B12 (no
B8A, no B10, like sen2r's L1C TOA files, which hold B10 but no B8A).
"""

from __future__ import annotations

import datetime as dt
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml

from karstflow.composite import median_composite
from karstflow.grid import RegionGrid
from karstflow.sources import ImageryError, MaskRules, MissingBandError, Period, get_source
from karstflow.sources.harmonise import boa_add_offset
from karstflow.sources.local import LocalSource, read_date_table
from karstflow.sources.rasters import load_stack
from karstflow.sources.safe import band_name, read_safe_products

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA = PROJECT_ROOT.parent / "shared" / "data" / "sen2r-s2l2a"

#: band order of the sen2r BOA files
BOA_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B11", "B12")
R10 = ("B02", "B03", "B04", "B08")
R20 = ("B02", "B03", "B04", "B05", "B06", "B07", "B11", "B12")  # + SCL; B08 has no 20 m file in L2A
R60 = ("B01", "B09")
#: the bands composited in these tests (10 m and 20 m)
BANDS = ("B2", "B3", "B4", "B8", "B5", "B6", "B7", "B11", "B12")
ALL = Period("all", dt.date(2017, 1, 1), dt.date(2019, 12, 31))

PRODUCTS = {
    "20170703": {
        "name": "S2A_MSIL2A_20170703T101021_N0205_R022_T32TNR_20170703T101041",
        "start": "20170703T101021",
        "baseline": "02.05",
        "granule": "L2A_T32TNR_A010668_20170703T101041",
        "cloud": 19.4,
    },
    "20190723": {
        "name": "S2A_MSIL2A_20190723T101031_N0213_R022_T32TNR_20190723T130431",
        "start": "20190723T101031",
        "baseline": "02.13",
        "granule": "L2A_T32TNR_A021393_20190723T101347",
        "cloud": 2.1,
    },
}


@pytest.fixture(scope="module")
def sen2r() -> Path:
    if not (DATA / "S2A2A_20170703_022_Barbellino_BOA_10.tif").exists():
        pytest.skip(
            f"real Sentinel-2 L2A test data not found at {DATA} (../shared/data/sen2r-s2l2a beside the project)"
        )
    return DATA


# --------------------------------------------------------------------------------------
# fixture: the same pixels as SAFE products and as a date table
# --------------------------------------------------------------------------------------


def _mean_down(a: np.ndarray, f: int) -> np.ndarray:
    """Block mean by ``f`` (rounded half up) of a (bands, y, x) uint16 array: the coarser bands."""
    b, h, w = a.shape
    m = a.astype(np.float64).reshape(b, h // f, f, w // f, f).mean(axis=(2, 4))
    return np.floor(m + 0.5).astype(np.uint16)


def _source_pixels(data: Path, day: str) -> dict:
    with rasterio.open(data / f"S2A2A_{day}_022_Barbellino_BOA_10.tif") as src:
        boa = src.read()
        crs, transform = src.crs, src.transform
    with rasterio.open(data / f"S2A2A_{day}_022_Barbellino_SCL_10.tif") as src:
        scl = src.read(1)
        scl_transform = src.transform
    assert boa.shape == (11, 42, 24) and scl.shape == (21, 12)
    assert not (boa == 0).any() and not (boa == 65535).any()  # no nodata in this patch
    b10 = dict(zip(BOA_ORDER, boa, strict=True))
    d20 = _mean_down(boa, 2)
    b20 = dict(zip(BOA_ORDER, d20, strict=True))
    b60 = dict(zip(BOA_ORDER, _mean_down(boa[:, :42, :24], 6), strict=True))
    return {
        "10": b10,
        "20": b20,
        "60": b60,
        "SCL": scl,
        "crs": crs,
        "transform": transform,
        "scl_transform": scl_transform,
    }


def _write(
    path: Path, bands: list[np.ndarray], crs, transform, *, driver: str, descriptions=None, dtype="uint16"
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": driver,
        "width": bands[0].shape[1],
        "height": bands[0].shape[0],
        "count": len(bands),
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
    }
    opts = {"QUALITY": "100", "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {"compress": "deflate"}
    with rasterio.open(path, "w", **profile, **opts) as dst:
        for i, b in enumerate(bands, start=1):
            dst.write(b.astype(dtype), i)
            if descriptions:
                dst.set_band_description(i, descriptions[i - 1])


def _mtd(name: str, start: str, baseline: str, cloud: float, offset: int | None = None) -> str:
    iso = dt.datetime.strptime(start, "%Y%m%dT%H%M%S").strftime("%Y-%m-%dT%H:%M:%S.024Z")
    offsets = ""
    if offset is not None:
        offsets = (
            "<BOA_ADD_OFFSET_VALUES_LIST>"
            + "".join(f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
            + "</BOA_ADD_OFFSET_VALUES_LIST>"
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_START_TIME>{iso}</PRODUCT_START_TIME>
      <PRODUCT_URI>{name}.SAFE</PRODUCT_URI>
      <PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
    </Product_Info>
    <Product_Image_Characteristics>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      {offsets}
    </Product_Image_Characteristics>
  </n1:General_Info>
  <n1:Quality_Indicators_Info>
    <Cloud_Coverage_Assessment>{cloud}</Cloud_Coverage_Assessment>
  </n1:Quality_Indicators_Info>
</n1:Level-2A_User_Product>
"""


def write_safe(root: Path, px: dict, info: dict, *, offset: int | None = None, skip: tuple[str, ...] = ()) -> Path:
    """A SAFE folder holding ``px`` in the L2A layout (PSD 14.x names)."""
    safe = root / f"{info['name']}.SAFE"
    img = safe / "GRANULE" / info["granule"] / "IMG_DATA"
    prefix = f"T32TNR_{info['start']}"
    t10 = px["transform"]
    for res, names in (("10", R10), ("20", R20), ("60", R60)):
        transform = t10 @ t10.scale(int(res) // 10)
        for b in names:
            if b not in skip:
                _write(
                    img / f"R{res}m" / f"{prefix}_{b}_{res}m.jp2",
                    [px[res][b]],
                    px["crs"],
                    transform,
                    driver="JP2OpenJPEG",
                )
    if "SCL" not in skip:
        _write(
            img / "R20m" / f"{prefix}_SCL_20m.jp2",
            [px["SCL"]],
            px["crs"],
            px["scl_transform"],
            driver="JP2OpenJPEG",
            dtype="uint8",
        )
    (safe / "MTD_MSIL2A.xml").write_text(_mtd(info["name"], info["start"], info["baseline"], info["cloud"], offset))
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>\n")
    return safe


def zip_safe(safe: Path) -> Path:
    """Zip a SAFE folder as the Copernicus Data Space does (``<name>.SAFE/`` at the root) and remove it."""
    out = safe.with_suffix(".zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(safe.rglob("*")):
            zf.write(f, f.relative_to(safe.parent).as_posix())
    shutil.rmtree(safe)
    return out


@pytest.fixture(scope="module")
def layouts(sen2r, tmp_path_factory) -> dict:
    """SAFE products (2017 a folder, 2019 a zip) and a date table holding the same pixels."""
    tmp = tmp_path_factory.mktemp("safe")
    downloads, table_dir = tmp / "downloads", tmp / "table"
    rows, pixels, safes = [], {}, []
    for day, info in PRODUCTS.items():
        px = _source_pixels(sen2r, day)
        pixels[day] = px
        safes.append(write_safe(downloads, px, info))
        iso = f"{day[:4]}-{day[4:6]}-{day[6:]}"
        t10 = px["transform"]
        names10 = [band_name(b) for b in R10]
        _write(
            table_dir / f"{day}_10m.tif",
            [px["10"][b] for b in R10],
            px["crs"],
            t10,
            driver="GTiff",
            descriptions=names10,
        )
        b20 = ("B05", "B06", "B07", "B11", "B12")
        _write(
            table_dir / f"{day}_20m.tif",
            [*(px["20"][b] for b in b20), px["SCL"]],
            px["crs"],
            t10 @ t10.scale(2),
            driver="GTiff",
            descriptions=[*(band_name(b) for b in b20), "SCL"],
        )
        for res in ("10m", "20m"):
            rows.append(
                {
                    "date": iso,
                    "file": f"{day}_{res}.tif",
                    "scene_id": info["name"],
                    "processing_baseline": info["baseline"],
                    "tile": "T32TNR",
                    "cloud_cover_pct": info["cloud"],
                }
            )
    zipped = zip_safe(safes[1])
    pd.DataFrame(rows).to_csv(table_dir / "scenes.csv", index=False)
    with rasterio.open(table_dir / "20170703_10m.tif") as f:
        grid = RegionGrid.from_bounds(f.crs.to_string(), 10, tuple(f.bounds))
    return {
        "downloads": downloads,
        "folder": safes[0],
        "zip": zipped,
        "table": table_dir / "scenes.csv",
        "grid": grid,
        "pixels": pixels,
        "tmp": tmp,
    }


def _composite(scenes, grid, resampling="nearest"):
    """The rule's computation (workflow/scripts/imagery_composite.py): load_stack, then median_composite."""
    ds = load_stack(
        scenes,
        grid,
        list(BANDS),
        chunk_px=16,
        rules=MaskRules(),
        resampling=resampling,
        region="barbellino",
        period=ALL,
    )
    composite, count = median_composite(ds["reflectance"], ds["clear"])
    return composite.values, count.values


# --------------------------------------------------------------------------------------
# the environment
# --------------------------------------------------------------------------------------


def test_rasterio_reads_and_writes_jpeg2000():
    from rasterio.drivers import raster_driver_extensions

    with rasterio.Env() as env:
        assert "JP2OpenJPEG" in env.drivers()
    assert raster_driver_extensions().get("jp2") in ("JP2OpenJPEG", "JPEG2000", "JP2ECW", "JP2KAK", "JP2MrSID")


def test_fixture_jp2_is_lossless(layouts):
    px = layouts["pixels"]["20170703"]
    img = layouts["folder"] / "GRANULE" / PRODUCTS["20170703"]["granule"] / "IMG_DATA"
    with rasterio.open(img / "R10m" / "T32TNR_20170703T101021_B08_10m.jp2") as src:
        np.testing.assert_array_equal(src.read(1), px["10"]["B08"])
        assert src.transform == px["transform"] and src.crs.to_epsg() == 32632
    with rasterio.open(img / "R20m" / "T32TNR_20170703T101021_SCL_20m.jp2") as src:
        np.testing.assert_array_equal(src.read(1), px["SCL"])


# --------------------------------------------------------------------------------------
# SAFE scenes = date-table scenes, and so are their composites
# --------------------------------------------------------------------------------------


def test_safe_scenes_equal_the_date_table_scenes(layouts):
    safe = read_safe_products([layouts["folder"], layouts["zip"]], bands=BANDS)
    table = read_date_table(layouts["table"])
    assert [s.date for s in safe] == [s.date for s in table] == [dt.date(2017, 7, 3), dt.date(2019, 7, 23)]
    assert [s.id for s in safe] == [s.id for s in table] == [p["name"] for p in PRODUCTS.values()]
    for s, t, info in zip(safe, table, PRODUCTS.values(), strict=True):
        assert s.encoding == t.encoding == "s2-l2a-dn"
        assert set(s.layers) == set(t.layers) == {*BANDS, "SCL"}
        assert s.meta["processing_baseline"] == t.meta["processing_baseline"] == info["baseline"]
        assert "boa_add_offset" not in s.meta and "boa_add_offset" not in t.meta  # decided from the baseline
        assert boa_add_offset(s.meta) == boa_add_offset(t.meta) == 0
        assert s.meta["cloud_cover_pct"] == t.meta["cloud_cover_pct"] == info["cloud"]
        assert s.meta["tile"] == t.meta["tile"] == "T32TNR"
        # the native resolutions: B2 from R10m (not its R20m copy), B11 and SCL from R20m
        assert s.layers["B2"][0].path.endswith("_B02_10m.jp2") and s.layers["B11"][0].path.endswith("_B11_20m.jp2")
        assert s.layers["SCL"][0].path.endswith("_SCL_20m.jp2")


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_composite_and_clear_count_identical_for_both_layouts(layouts, resampling):
    grid = layouts["grid"]
    assert grid.shape == (42, 24)
    from_safe = _composite(
        read_safe_products(str(layouts["downloads"] / "S2*_MSIL2A_*"), bands=BANDS), grid, resampling
    )
    from_table = _composite(read_date_table(layouts["table"]), grid, resampling)
    np.testing.assert_array_equal(from_safe[0], from_table[0])  # NaN where no clear observation, in both
    np.testing.assert_array_equal(from_safe[1], from_table[1])
    composite, count = from_safe
    # the clear count is the SCL's (nearest from 20 m: each 20 m class covers 2 x 2 grid cells)
    not_clear = MaskRules().scl_not_clear
    expect = sum(
        (~np.isin(np.repeat(np.repeat(p["SCL"], 2, 0), 2, 1), not_clear)).astype(int)
        for p in layouts["pixels"].values()
    )
    np.testing.assert_array_equal(count, expect)
    assert set(np.unique(count).tolist()) == {1, 2}  # 2017 is cloudy in parts; every pixel is clear once
    assert np.isnan(composite[:, count == 0]).all() and np.isfinite(composite[:, count > 0]).all()
    # two clear observations: the median is their mean reflectance (baselines < 04.00: no offset)
    b2 = [p["10"]["B02"].astype(np.float32) / 10000 for p in layouts["pixels"].values()]
    both = count == 2
    np.testing.assert_allclose(composite[BANDS.index("B2")][both], ((b2[0] + b2[1]) / 2)[both], rtol=1e-6)


def test_local_source_from_config_reads_safe(layouts):
    schema = yaml.safe_load((PROJECT_ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    import jsonschema

    imagery_schema = schema["$defs"]["region"]["properties"]["inputs"]["properties"]["imagery"]
    tmp = layouts["tmp"]
    for spec in ({"safe": "downloads/*.SAFE"}, {"safe": ["downloads/*.SAFE", "downloads/*.zip", "downloads/*.zip"]}):
        jsonschema.validate(spec, imagery_schema)
        region = {"source": "local", "inputs": {"imagery": spec}}
        src = get_source("barbellino", region, {"bands": list(BANDS)}, workdir=tmp)
        assert isinstance(src, LocalSource) and src.bands == BANDS
        scenes = src.scenes(ALL, layouts["grid"])
        assert [s.date.year for s in scenes] == ([2017] if spec["safe"] == "downloads/*.SAFE" else [2017, 2019])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"safe": "downloads/*.zip", "date_table": "table/scenes.csv"}, imagery_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"safe": []}, imagery_schema)
    # max_scene_cloud_pct applies to the products' Cloud_Coverage_Assessment
    src = LocalSource.from_safe("barbellino", [layouts["folder"], layouts["zip"]], bands=BANDS, max_scene_cloud_pct=10)
    assert [s.date.year for s in src.scenes(ALL)] == [2019]


# --------------------------------------------------------------------------------------
# zips, harmonisation, bad inputs
# --------------------------------------------------------------------------------------


def test_zip_is_read_in_place(layouts):
    before = sorted(p.relative_to(layouts["tmp"]) for p in layouts["tmp"].rglob("*"))
    (scene,) = read_safe_products(layouts["zip"], bands=BANDS)
    assert scene.date == dt.date(2019, 7, 23) and scene.meta["processing_baseline"] == "02.13"
    zip_path = layouts["zip"].resolve().as_posix()
    for layers in scene.layers.values():
        assert all(layer.path.startswith(f"/vsizip/{zip_path}/") for layer in layers)
    with rasterio.open(scene.layers["B12"][0].path) as src:
        np.testing.assert_array_equal(src.read(1), layouts["pixels"]["20190723"]["20"]["B12"])
    _composite([scene], layouts["grid"])
    after = sorted(p.relative_to(layouts["tmp"]) for p in layouts["tmp"].rglob("*"))
    assert after == before  # nothing extracted


def test_baseline_04_offset_from_the_metadata(sen2r, tmp_path):
    px = _source_pixels(sen2r, "20190723")
    info = {
        **PRODUCTS["20190723"],
        "name": "S2B_MSIL2A_20230723T101031_N0509_R022_T32TNR_20230723T130431",
        "start": "20230723T101031",
        "baseline": "05.09",
    }
    safe = write_safe(tmp_path, px, info, offset=-1000)
    (scene,) = read_safe_products(safe, bands=["B02", "B8", "B11"])
    assert set(scene.layers) == {"B2", "B8", "B11", "SCL"}
    assert scene.meta["boa_add_offset"] == -1000 and scene.meta["processing_baseline"] == "05.09"
    # without BOA_ADD_OFFSET in the metadata the baseline decides, as for the date table
    (safe / "MTD_MSIL2A.xml").write_text(_mtd(info["name"], info["start"], "05.09", 1.0))
    (scene,) = read_safe_products(safe, bands=["B2"])
    assert "boa_add_offset" not in scene.meta and boa_add_offset(scene.meta) == -1000
    # and without MTD_MSIL2A.xml the name's N0509
    (safe / "MTD_MSIL2A.xml").unlink()
    (scene,) = read_safe_products(safe, bands=["B2"])
    assert scene.meta["processing_baseline"] == "05.09" and boa_add_offset(scene.meta) == -1000


def test_band_missing_at_10_m_falls_back_to_20_m_then_60_m(sen2r, tmp_path):
    px = _source_pixels(sen2r, "20170703")
    safe = write_safe(tmp_path, px, PRODUCTS["20170703"], skip=("B02",))  # no B02 at 10 m nor 20 m
    with pytest.raises(MissingBandError, match=r"no band B2"):
        read_safe_products(safe, bands=["B2"])
    _write(
        safe / "GRANULE" / PRODUCTS["20170703"]["granule"] / "IMG_DATA" / "R60m" / "T32TNR_20170703T101021_B02_60m.jp2",
        [px["60"]["B02"]],
        px["crs"],
        px["transform"] @ px["transform"].scale(6),
        driver="JP2OpenJPEG",
    )
    (scene,) = read_safe_products(safe, bands=["B2", "B1", "B3"])
    assert scene.layers["B2"][0].path.endswith("_B02_60m.jp2") and scene.layers["B1"][0].path.endswith("_B01_60m.jp2")
    assert scene.layers["B3"][0].path.endswith("_B03_10m.jp2")


def test_product_without_scl_is_named(sen2r, tmp_path):
    px = _source_pixels(sen2r, "20170703")
    safe = write_safe(tmp_path, px, PRODUCTS["20170703"], skip=("SCL",))
    with pytest.raises(MissingBandError, match=r"no band SCL") as err:
        read_safe_products(safe, bands=BANDS)
    assert str(safe) in str(err.value)
    zipped = zip_safe(safe)
    with pytest.raises(MissingBandError, match=r"no band SCL") as err:
        read_safe_products(zipped, bands=BANDS)
    assert str(zipped) in str(err.value)


def test_glob_matching_nothing_names_the_pattern(tmp_path):
    pattern = str(tmp_path / "downloads" / "S2*_MSIL2A_*.zip")
    with pytest.raises(ImageryError, match="matches no SAFE") as err:
        read_safe_products(pattern, bands=BANDS)
    assert pattern in str(err.value)
    with pytest.raises(ImageryError, match="matches no SAFE"):
        LocalSource.from_config(
            "r", {"inputs": {"imagery": {"safe": ["downloads/*.SAFE"]}}}, {}, workdir=tmp_path
        ).scenes(ALL)
    with pytest.raises(FileNotFoundError, match="not found"):
        read_safe_products(tmp_path / "S2A_MSIL2A_missing.SAFE", bands=BANDS)


def test_not_a_safe_and_unreadable_zip_are_named(tmp_path):
    folder = tmp_path / "holiday_photos"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    with pytest.raises(ImageryError, match="not a Sentinel-2 L2A SAFE product") as err:
        read_safe_products(folder, bands=BANDS)
    assert str(folder) in str(err.value)
    bad = tmp_path / "S2A_MSIL2A_20170703T101021_N0205_R022_T32TNR_20170703T101041.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ImageryError, match="not a readable zip") as err:
        read_safe_products(bad, bands=BANDS)
    assert str(bad) in str(err.value)
    l1c = tmp_path / "S2A_MSIL1C_20170703T101021_N0205_R022_T32TNR_20170703T101041.SAFE"
    (l1c / "GRANULE").mkdir(parents=True)
    with pytest.raises(ImageryError, match="Level-1C"):
        read_safe_products(l1c, bands=BANDS)
    empty = tmp_path / "S2A_MSIL2A_20170703T101021_N0205_R022_T32TNR_20170703T101041.SAFE"
    empty.mkdir()
    with pytest.raises(ImageryError, match="no GRANULE"):
        read_safe_products(empty, bands=BANDS)
