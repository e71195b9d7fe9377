"""End-to-end: `snakemake --report` on the karst demo run holds a map of every raster output.

Uses the session's demo run (conftest ``karst_demo_run``): every GeoTIFF under
results/demo-karst/ must have its PNG map (legend, scale bar, north arrow drawn by
karstflow.plotting.raster_map) and the HTML report must embed every map and the service
tables. karstflow.report's styles are checked on their own too.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import rasterio
from PIL import Image

from karstflow.grid import RegionGrid
from karstflow.report import map_key, map_style, rgb_band_indices, shared_limits

REGION = "demo-karst"


def test_map_styles_use_the_stage_legends():
    from karstflow.desertification import RD_GRADES
    from karstflow.trends import TREND_CLASSES

    assert map_key("services", "water_yield_2023") == ("services/water_yield", 2023)
    assert map_key("imagery", "composite_2022") == ("imagery/composite", 2022)
    assert map_key("imagery", "composite_2022-h1") == ("imagery/composite", None)
    assert map_style("imagery", "clear_count_2022-h1")["title"] == "clear observations 2022-h1"
    style = map_style("greening", "trend_class", region="r")
    assert style["classes"] == TREND_CLASSES and style["title"] == "r: greening trend"
    assert map_style("desertification", "rd_grade_2000")["classes"] == RD_GRADES
    wy = map_style("services", "water_yield_2023", region="r")
    assert wy["title"] == "r: water yield (InVEST) 2023" and wy["units"] == "mm yr-1"
    assert map_style("imagery", "composite_2022")["rgb"] is True
    assert rgb_band_indices(["B2", "B3", "B4", "B8"]) == [2, 1, 0]
    lo, hi = shared_limits({"a": np.arange(101.0), "b": np.full(3, np.nan)}, {})
    assert (lo, hi) == pytest.approx((2.0, 98.0))
    assert shared_limits({"a": np.arange(101.0)}, {"vmin": 0.0, "vmax": 1.0}) == (0.0, 1.0)


def test_raster_map_draws_legend_scale_bar_and_north_arrow(tmp_path):
    from karstflow.plotting import raster_map, save_figure

    grid = RegionGrid.from_bounds("EPSG:32648", 30, (0, 0, 2400, 1200))
    values = np.tile(np.linspace(0, 10, grid.width), (grid.height, 1))
    fig = raster_map(grid.data_array(values), title="t", units="mm")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "N" in texts  # the north arrow's label
    assert any(t.endswith(" m") or t.endswith(" km") for t in texts), texts  # the scale bar's unit label
    assert len(fig.axes) == 2  # the map and its colour bar
    save_figure(fig, tmp_path / "m.png")
    fig2 = raster_map(grid.data_array((values > 5).astype(float)), classes={0: "low", 1: "high"})
    legend = fig2.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["0 low", "1 high"]
    save_figure(fig2, tmp_path / "c.png")
    assert Image.open(tmp_path / "c.png").size[0] > 500


def test_tradeoff_heatmap_and_change_bars_show_the_figures():
    import pandas as pd

    from karstflow.plotting import change_bars, tradeoff_heatmap

    pairs = pd.DataFrame(
        {
            "service_a": ["carbon_storage", "carbon_storage", "water_yield"],
            "service_b": ["water_yield", "habitat_quality", "habitat_quality"],
            "rho": [-0.52, 0.1, float("nan")],
            "p_value": [0.001, 0.2, float("nan")],
        }
    )
    fig = tradeoff_heatmap(pairs, alpha=0.05)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"-0.52*", "0.10", "n/a"} <= texts  # significant pairs starred, missing ones marked
    bars = change_bars(pd.Series({"a_change_pct": 20.6, "b_change_pct": -8.3}), {"carbon": "a", "water": "b"})
    assert {t.get_text() for t in bars.axes[0].texts} == {" +20.6 %", " -8.3 %"}


@pytest.mark.e2e
def test_report_holds_a_map_of_every_raster_output(karst_demo_run, workflow_runner):
    run = karst_demo_run
    base = run / "results" / REGION

    # every single-band raster a stage made; inputs/ holds the owner's layers brought to the
    # grid, not results; a stack of bands (the RUSLE factors R, K, C, P of each year) is data
    # for reuse, its figures are the soil-loss and retention maps drawn from it
    def single_band(path):
        with rasterio.open(path) as ds:
            return ds.count == 1

    rasters = sorted(
        p.relative_to(base)
        for p in base.rglob("*.tif")
        if p.relative_to(base).parts[0] not in ("inputs", "tiles") and single_band(p)
    )
    maps = base / "maps"
    expected = {f"{p.parent.as_posix()}-{p.stem}.png" for p in rasters}
    assert len(expected) >= 25
    assert {p.name for p in maps.glob("*.png")} == expected
    for png in maps.glob("*.png"):
        with Image.open(png) as im:
            arr = np.asarray(im.convert("RGB"))
        assert arr.shape[0] > 300 and arr.shape[1] > 300
        assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 8, f"{png.name} looks blank"
    report = run / "report.html"
    workflow_runner.run(run, "--report", str(report))
    html = report.read_text(errors="replace")
    # every map is embedded in the HTML (a data URI), not a link to a file beside it
    embedded = set(re.findall(r"data:image/png;[^,\"]*?filename=([^;,\"]+\.png);base64,", html))
    assert expected <= embedded, sorted(expected - embedded)
    assert {"tradeoffs.png", "services_change.png"} <= embedded  # the services' summary figures
    # the coupling stage's figures and township table (a section of their own)
    assert {"coupling_types.png", "gwr_coefficients.png", "moran_scatter.png"} <= embedded
    assert "filename=coupling_townships.csv;base64," in html and "Social-ecological coupling" in html
    for table in ("services.csv", "tradeoffs.csv", "services_change.csv", "improvement_townships.csv"):
        assert f"filename={table};base64," in html, f"{table} is not in the report"


def test_land_cover_maps_use_the_regions_legend():
    """A region with its own legend (config landcover.classes / colours) gets its class
    names and colours in the report, not the default nine classes."""
    from karstflow.demo import LANDCOVER_CLASSES

    default = map_style("landcover", "landcover")
    assert default["classes"] == LANDCOVER_CLASSES
    own = map_style(
        "inputs",
        "landcover_2000",
        landcover_legend={10: "paddy", 20: "karst forest"},
        landcover_colours={10: (1, 2, 3)},
    )
    assert own["classes"] == {10: "paddy", 20: "karst forest"} and own["colours"] == {10: (1, 2, 3)}
    assert own["title"].endswith("2000")
