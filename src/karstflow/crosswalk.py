"""Public land-cover products mapped to the region's legend.

Stage ``public_landcover`` maps the codes of a public product to the codes of
``landcover.classes`` by a crosswalk: product code -> legend code. The defaults are for
the default legend (karstflow.demo.LANDCOVER_CLASSES: 1 cultivated, 2 forested land, 3
other forest land, 4 sparse forest land, 5 shrub, 6 grassland, 7 water, 8 built-up, 9 bare
rock); a region with its own legend gives its own crosswalk.

* ESA WorldCover 2020 v100 / 2021 v200 (Zanaga et al. 2021, 2022; product user manual
  table 2): 10 tree cover, 20 shrubland, 30 grassland, 40 cropland, 50 built-up, 60 bare /
  sparse vegetation, 70 snow and ice, 80 permanent water, 90 herbaceous wetland, 95
  mangroves, 100 moss and lichen; 0 no data.
* CLCD, the annual 30 m China Land Cover Dataset (Yang and Huang 2021, Earth Syst. Sci.
  Data 13, 3907-3925, table 1): 1 cropland, 2 forest, 3 shrub, 4 grassland, 5 water, 6
  snow/ice, 7 barren, 8 impervious, 9 wetland; 0 no data.

Tree cover maps to "forested land": neither product separates the study's three forest
types, so a region that needs them classifies (stage landcover) instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: No-data code of both products.
PRODUCT_NODATA = 0

DEFAULT_CROSSWALKS: dict[str, dict[int, int]] = {
    "worldcover": {10: 2, 20: 5, 30: 6, 40: 1, 50: 8, 60: 9, 70: 9, 80: 7, 90: 6, 95: 2, 100: 6},
    "clcd": {1: 1, 2: 2, 3: 5, 4: 6, 5: 7, 6: 9, 7: 9, 8: 8, 9: 6},
}


class CrosswalkError(ValueError):
    """A crosswalk does not cover the product's codes or maps to codes outside the legend."""


def load_crosswalk(value: Any, product: str, legend: Mapping[int, str], *, key: str) -> dict[int, int]:
    """The crosswalk of config key ``key``: a mapping, a CSV (columns product_code, lucode),
    or None for the default of ``product``; every target must be a legend code."""
    if value is None:
        table = dict(DEFAULT_CROSSWALKS[product])
        origin = f"the default {product} crosswalk"
    elif isinstance(value, str):
        import pandas as pd

        path = Path(value)
        if not path.is_file():
            raise CrosswalkError(f"config key {key}: crosswalk file not found: {path}")
        df = pd.read_csv(path)
        missing = [c for c in ("product_code", "lucode") if c not in df.columns]
        if missing:
            raise CrosswalkError(f"{path} (config key {key}): expected columns {missing}, found {list(df.columns)}")
        table = {int(a): int(b) for a, b in zip(df["product_code"], df["lucode"], strict=True)}
        origin = str(path)
    else:
        table = {int(a): int(b) for a, b in dict(value).items()}
        origin = f"config key {key}"
    legend_codes = {int(c) for c in legend}
    outside = sorted({v for v in table.values() if v not in legend_codes})
    if outside:
        raise CrosswalkError(
            f"{origin}: maps to code(s) {outside} that are not in landcover.classes {sorted(legend_codes)}; "
            f"give a crosswalk for your legend in {key}"
        )
    return table


def apply_crosswalk(
    codes: np.ndarray, table: Mapping[int, int], *, source: str, nodata: int = PRODUCT_NODATA
) -> np.ndarray:
    """Legend codes (uint8, 0 = no data) of the product ``codes``; product codes the table
    lacks stop with their pixel counts."""
    codes = np.asarray(codes)
    present, counts = np.unique(codes[codes != nodata], return_counts=True)
    unmapped = [(int(c), int(n)) for c, n in zip(present, counts, strict=True) if int(c) not in table]
    if unmapped:
        raise CrosswalkError(
            f"{source}: product code(s) {[c for c, _ in unmapped]} ({sum(n for _, n in unmapped)} pixels) have no "
            "row in the crosswalk (landcover.public.crosswalk)"
        )
    lut = np.zeros(max([int(k) for k in table] + [int(present.max()) if present.size else 0]) + 1, dtype=np.uint8)
    for k, v in table.items():
        lut[int(k)] = int(v)
    out = np.zeros(codes.shape, dtype=np.uint8)
    valid = codes != nodata
    out[valid] = lut[codes[valid].astype(np.int64)]
    return out
