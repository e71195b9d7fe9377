"""Sentinel-2 reflectance across processing baselines: the 04.00 BOA offset, per item.

From processing baseline 04.00 (ESA, products generated from 25 January 2022) the L2A
digital numbers carry a band-independent shift: ``reflectance = (DN + BOA_ADD_OFFSET) /
QUANTIFICATION_VALUE`` with ``BOA_ADD_OFFSET = -1000`` and ``QUANTIFICATION_VALUE =
10000``; DN 0 stays "no data". Earlier baselines have no offset. Reprocessed collections
(Collection-1, baseline 05.xx) carry it for acquisitions of any date, so the decision is
made per item from its metadata, never from the acquisition date.

Metadata keys read, first match wins (:func:`boa_add_offset`):

1. ``boa_add_offset`` (karstflow date tables, the demo's ``scenes.csv``, or the value of
   ``BOA_ADD_OFFSET`` from the product's ``MTD_MSIL2A.xml``);
2. ``earthsearch:boa_offset_applied`` (Element 84 Earth Search): ``true`` means the COG
   values were already shifted back, so the offset to add is 0;
3. ``s2:processing_baseline`` (Planetary Computer, Earth Search, CDSE) or
   ``processing_baseline`` / ``PROCESSING_BASELINE`` (Earth Engine): -1000 from 04.00 on.

Earth Engine's ``COPERNICUS/S2_SR_HARMONIZED`` is harmonised by Google already; its
adapter records ``boa_add_offset = 0`` for every image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: QUANTIFICATION_VALUE of Sentinel-2 L2A products (all baselines).
QUANTIFICATION_VALUE = 10000.0
#: BOA_ADD_OFFSET of baselines >= 04.00.
OFFSET_04 = -1000
#: Digital number marking "no data" in every baseline.
DN_NODATA = 0


class HarmonisationError(ValueError):
    """An item's metadata does not say how to turn its digital numbers into reflectance."""


def parse_baseline(baseline: Any) -> tuple[int, int]:
    """``"04.00"`` / ``"4.0"`` / ``4.0`` / ``"N0400"`` -> ``(4, 0)``."""
    text = str(baseline).strip().upper()
    if text.startswith("N") and text[1:].isdigit() and len(text) == 5:
        return int(text[1:3]), int(text[3:5])
    try:
        major, _, minor = text.partition(".")
        return int(major), int(minor or 0)
    except ValueError:
        raise HarmonisationError(f"processing baseline {baseline!r} is not of the form 'MM.mm'") from None


def _present(meta: Mapping[str, Any], key: str) -> bool:
    value = meta.get(key)
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value.strip() == "")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def boa_add_offset(meta: Mapping[str, Any], *, item: str = "item") -> int:
    """The BOA_ADD_OFFSET to add to this item's digital numbers (0 or -1000).

    ``item`` names the item (scene id, file) in the error message.

    Raises
    ------
    HarmonisationError
        When none of the keys listed in the module docstring is present.
    """
    if _present(meta, "boa_add_offset"):
        return int(round(float(meta["boa_add_offset"])))
    if _present(meta, "earthsearch:boa_offset_applied") and _as_bool(meta["earthsearch:boa_offset_applied"]):
        return 0
    for key in ("s2:processing_baseline", "processing_baseline", "PROCESSING_BASELINE"):
        if _present(meta, key):
            return OFFSET_04 if parse_baseline(meta[key]) >= (4, 0) else 0
    raise HarmonisationError(
        f"{item}: cannot tell whether the processing-baseline 04.00 offset applies: its metadata has "
        "none of boa_add_offset, earthsearch:boa_offset_applied, s2:processing_baseline, processing_baseline"
    )


def to_reflectance(dn: Any, offset: int | float) -> Any:
    """Surface reflectance (float32, NaN where DN is 0) from L2A digital numbers.

    Works on numpy, dask and xarray objects alike (plain arithmetic and ``where``).
    """
    refl = (dn.astype(np.float32) + np.float32(offset)) / np.float32(QUANTIFICATION_VALUE)
    if hasattr(refl, "where") and not isinstance(refl, np.ndarray):
        return refl.where(dn != DN_NODATA)
    return np.where(dn != DN_NODATA, refl, np.float32(np.nan)).astype(np.float32)


def harmonise_dn(dn: np.ndarray, offset: int | float) -> np.ndarray:
    """Shift digital numbers to the pre-04.00 convention (offset 0), keeping DN 0 as no data.

    Valid pixels whose shifted value would fall below 1 (negative reflectance) become 1,
    as in Earth Engine's ``S2_SR_HARMONIZED``; uint16 in, uint16 out.
    """
    dn = np.asarray(dn)
    out = np.clip(dn.astype(np.int32) + int(offset), 1, np.iinfo(np.uint16).max).astype(np.uint16)
    out[dn == DN_NODATA] = DN_NODATA
    return out
