"""Validation sampling design (Olofsson et al. 2014) and reading labels back."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from karstflow.classify import SampleError
from karstflow.grid import RegionGrid
from karstflow.sampling import (
    allocate_samples,
    kml_description,
    labelled_codes,
    olofsson_sample_size,
    sampling_design,
    stratified_sample,
)

# Olofsson et al. (2014) section 5 example: strata deforestation, forest gain, stable
# forest, stable non-forest; mapped pixels and anticipated user's accuracies; S(O) = 0.01.
PIXELS = pd.Series({1: 200_000, 2: 150_000, 3: 3_200_000, 4: 6_450_000})
USERS = {1: 0.7, 2: 0.6, 3: 0.9, 4: 0.95}


def test_sample_size_of_the_published_example():
    # sum W_i S_i = 0.02*0.4583 + 0.015*0.4899 + 0.32*0.3 + 0.645*0.2179 = 0.25309 -> n = 640.5 -> 641
    w = PIXELS / PIXELS.sum()
    assert olofsson_sample_size(w, pd.Series(USERS), 0.01) == 641


def test_allocation_floor_then_proportional_by_hand():
    w = PIXELS / PIXELS.sum()
    alloc = allocate_samples(641, w, PIXELS, min_per_class=75)
    # 641 - 2 x 75 = 491 shared by the stable classes: 491 * 0.32 / 0.965 = 162.8, 491 * 0.645 / 0.965 = 328.2
    assert alloc.tolist() == [75, 75, 163, 328]


def test_allocation_never_exceeds_the_pixels_of_a_class():
    alloc = allocate_samples(100, pd.Series({1: 0.5, 2: 0.49, 3: 0.01}), pd.Series({1: 5000, 2: 4900, 3: 12}), 30)
    assert alloc[3] == 12 and alloc.sum() == 100


def test_design_and_sample_at_pixel_centres():
    grid = RegionGrid.from_bounds("EPSG:32650", 10, (0, 0, 300, 200))
    lc = np.full(grid.shape, 1, np.uint8)
    lc[:, 20:] = 2
    lc[0, :3] = 3
    lc[-1, -1] = 255
    da = grid.data_array(lc)
    counts = pd.Series({c: int((lc == c).sum()) for c in (1, 2, 3)})
    design = sampling_design(counts, {1: "a", 2: "b", 3: "c"}, target_se=0.05, users_accuracy=0.8, min_per_class=5)
    # every S_i = sqrt(0.8 * 0.2) = 0.4 -> n = (0.4 / 0.05)^2 = 64; class c has 3 px (< floor 5): all 3;
    # 61 left for 397 and 199 px: 40.63 and 20.37 -> 41 and 20 (largest remainder)
    n = 64
    assert (design["n_eq13"] == n).all() and design["n_samples"].tolist() == [41, 20, 3]
    s1 = stratified_sample(da, design, {1: "a", 2: "b", 3: "c"}, seed=4)
    s2 = stratified_sample(da, design, {1: "a", 2: "b", 3: "c"}, seed=4)
    assert s1.equals(s2) and len(s1) == 64
    col = ((s1.geometry.x - 5) / 10).round().astype(int)
    row = ((200 - 5 - s1.geometry.y) / 10).round().astype(int)
    assert np.array_equal(lc[row, col], s1["map_code"].to_numpy())
    assert ((s1.geometry.x - 5) % 10 == 0).all() and s1["reference_code"].isna().all()
    assert s1["map_code"].value_counts().to_dict() == {1: 41, 2: 20, 3: 3}


def test_labels_read_from_the_field_or_a_kml_description():
    legend = {1: "a", 2: "b"}
    frame = gpd.GeoDataFrame(
        {
            "sample_id": [1, 2, 3, 4],
            "reference_code": ["2", None, "", None],
            "description": [kml_description(legend)] * 2
            + [kml_description(legend) + "1", kml_description(legend) + " 2"],
        },
        geometry=[shapely.Point(0, 0)] * 4,
    )
    codes = labelled_codes(frame, legend)
    assert codes.tolist()[0] == 2 and pd.isna(codes.iloc[1]) and codes.tolist()[2:] == [1, 2]


def test_labels_outside_the_legend_name_the_file_and_samples():
    frame = pd.DataFrame({"sample_id": [5, 6, 7], "reference_code": [1, 12, 13]})
    with pytest.raises(SampleError, match=r"labelled.kml: class code\(s\) \[12, 13\].*outside the legend.*ids 6, 7"):
        labelled_codes(frame, {1: "a", 2: "b"}, source="labelled.kml")
    with pytest.raises(SampleError, match="no sample is labelled"):
        labelled_codes(pd.DataFrame({"reference_code": [None, None]}), {1: "a"})
