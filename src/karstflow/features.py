"""Classification features from surface-reflectance composites and terrain.

For every compositing period: the bands of the composite and the normalised-difference
indices of :data:`SPECTRAL_INDICES`; across periods (two or more): the seasonal NDVI
statistics max, min, mean and amplitude (max - min), which separate the double-cropped
rice of the cultivated land from the steadier greenness of forest and the strong
summer peak of grassland; plus elevation and slope when given. Pixels without a clear
observation in a period are NaN in that period's features (the random forest of
:mod:`karstflow.classify` handles missing values).

Everything is lazy for dask-backed inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid

__all__ = [
    "SPECTRAL_INDICES",
    "build_features",
    "load_features",
    "named_bands",
    "normalized_difference",
    "seasonal_ndvi",
    "spectral_indices",
]

#: Index -> (band a, band b, source): index = (a - b) / (a + b), Sentinel-2 band names.
SPECTRAL_INDICES: dict[str, tuple[str, str, str]] = {
    "NDVI": ("B8", "B4", "Rouse et al. (1974): NIR vs red, vegetation vigour"),
    "NDWI": ("B3", "B8", "McFeeters (1996): green vs NIR, open water"),
    "NDBI": ("B11", "B8", "Zha, Gao & Ni (2003): SWIR1 vs NIR, built-up land and bare surfaces"),
}

SEASONAL_STATISTICS = ("max", "min", "mean", "amplitude")


def named_bands(composite: xr.DataArray, source: str = "composite") -> xr.DataArray:
    """The composite with its ``band`` coordinate set to the band names of the GeoTIFF.

    Band names come from the band descriptions (rioxarray's ``long_name`` attribute) or
    from a ``band`` coordinate that already holds strings.
    """
    if "band" not in composite.dims:
        raise ValueError(f"{source}: expected a multi-band raster (dims band, y, x), found dims {composite.dims}")
    if composite["band"].dtype.kind in "US" or all(isinstance(b, str) for b in composite["band"].values):
        return composite
    names = composite.attrs.get("long_name")
    if isinstance(names, str):
        names = (names,)
    if not names or len(names) != composite.sizes["band"] or any(not n for n in names):
        raise ValueError(
            f"{source}: expected band descriptions naming its {composite.sizes['band']} bands "
            f"(e.g. B2, B3, B4, B8, B11, B12), found {names!r}"
        )
    return composite.assign_coords(band=[str(n) for n in names])


def normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """(a - b) / (a + b); NaN where a + b is 0 or either input is NaN."""
    total = a + b
    return xr.where(total != 0, (a - b) / total.where(total != 0), np.nan)


def spectral_indices(
    composite: xr.DataArray, indices: Sequence[str] = tuple(SPECTRAL_INDICES), source: str = "composite"
) -> xr.Dataset:
    """The requested normalised-difference indices of a named-band composite."""
    composite = named_bands(composite, source)
    have = [str(b) for b in composite["band"].values]
    out = {}
    for name in indices:
        if name not in SPECTRAL_INDICES:
            raise ValueError(f"unknown spectral index {name!r}; known: {', '.join(SPECTRAL_INDICES)}")
        a, b, _ = SPECTRAL_INDICES[name]
        missing = [x for x in (a, b) if x not in have]
        if missing:
            raise ValueError(
                f"{source}: index {name} needs bands {a} and {b}; the composite has {have} (missing {missing})"
            )
        out[name] = normalized_difference(composite.sel(band=a, drop=True), composite.sel(band=b, drop=True))
    return xr.Dataset(out)


def seasonal_ndvi(ndvi: xr.DataArray, dim: str = "period") -> xr.Dataset:
    """Max, min, mean and amplitude (max - min) of NDVI over ``dim``, NaN-skipping."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice encountered")
        warnings.filterwarnings("ignore", message="Mean of empty slice")
        high = ndvi.max(dim, skipna=True)
        low = ndvi.min(dim, skipna=True)
        mean = ndvi.mean(dim, skipna=True)
    return xr.Dataset({"max": high, "min": low, "mean": mean, "amplitude": high - low})


def build_features(
    composites: Mapping[str, xr.DataArray],
    *,
    indices: Sequence[str] = tuple(SPECTRAL_INDICES),
    elevation: xr.DataArray | None = None,
    slope: xr.DataArray | None = None,
) -> xr.DataArray:
    """Stack the classification features into one float32 (feature, y, x) array.

    ``composites`` maps period name -> composite (bands named, see :func:`named_bands`),
    all on one grid; a composite may also be a single ``NDVI`` band (pass ``indices=()``),
    which still feeds the seasonal statistics. Feature names: ``<period>_<band>``, ``<period>_<index>``, then with
    two or more periods and NDVI among ``indices`` ``NDVI_max``, ``NDVI_min``,
    ``NDVI_mean``, ``NDVI_amplitude``, then ``elevation_m`` and ``slope_deg``.
    """
    if not composites:
        raise ValueError("build_features: no composites given (expected one per compositing period)")
    layers: list[xr.DataArray] = []
    names: list[str] = []
    ndvi_by_period = []
    for period, composite in composites.items():
        composite = named_bands(composite, f"composite of period {period}")
        for band in composite["band"].values:
            layers.append(composite.sel(band=band, drop=True))
            names.append(f"{period}_{band}")
        idx = spectral_indices(composite, indices, source=f"composite of period {period}")
        for name in idx.data_vars:
            layers.append(idx[name])
            names.append(f"{period}_{name}")
        if "NDVI" in idx:
            ndvi_by_period.append(idx["NDVI"])
        elif "NDVI" in composite["band"].values:
            # an NDVI composite (no reflectance bands) still gives the seasonal statistics
            ndvi_by_period.append(composite.sel(band="NDVI", drop=True))
    if len(ndvi_by_period) >= 2:
        stats = seasonal_ndvi(xr.concat(ndvi_by_period, dim="period"))
        for stat in SEASONAL_STATISTICS:
            layers.append(stats[stat])
            names.append(f"NDVI_{stat}")
    for name, layer in (("elevation_m", elevation), ("slope_deg", slope)):
        if layer is not None:
            layers.append(layer)
            names.append(name)
    template = layers[0]
    aligned = []
    for name, layer in zip(names, layers, strict=True):
        if layer.shape != template.shape:
            raise ValueError(
                f"feature {name} has shape {layer.shape}, the first feature {template.shape}: "
                "inputs must share the region grid"
            )
        aligned.append(layer.drop_vars([c for c in layer.coords if c not in ("y", "x")]).astype(np.float32))
    stack = xr.concat(aligned, dim="feature", coords="minimal", compat="override", join="override")
    stack = stack.assign_coords(feature=names)
    if template.rio.crs is not None:
        stack = stack.rio.write_crs(template.rio.crs).rio.write_transform(template.rio.transform())
    stack.name = "features"
    return stack


def classifier_features(input: Mapping[str, Any], params: Mapping[str, Any], grid: RegionGrid) -> xr.DataArray:
    """The features of rules landcover_train and landcover_classify from their inputs
    (``composites``, and ``dem``/``slope`` when ``features.terrain``) and params
    (``periods``, ``features``, ``chunk_px``): one place, so training and prediction agree."""
    terrain = bool(params["features"]["terrain"])
    return load_features(
        dict(zip(params["periods"], input["composites"], strict=True)),
        grid,
        indices=params["features"]["indices"],
        dem=input.get("dem") if terrain else None,
        slope=input.get("slope") if terrain else None,
        chunk_px=params["chunk_px"],
    )


def load_features(
    composites: Mapping[str, str],
    grid: RegionGrid,
    *,
    indices: Sequence[str] = tuple(SPECTRAL_INDICES),
    dem: str | None = None,
    slope: str | None = None,
    chunk_px: int = 512,
) -> xr.DataArray:
    """:func:`build_features` of the composite GeoTIFFs (period -> path) and, when given, the
    DEM and slope GeoTIFFs, read lazily in ``chunk_px`` rows.

    The training of the land-cover model (whole region) and its prediction (the region or a
    tile of it) build the features here, so both see the same features. Raises
    ``ValueError`` naming the file when a composite is not on ``grid``.
    """
    from karstflow.io import read_raster

    chunks = {"y": chunk_px, "x": -1}
    named = {}
    for period, path in composites.items():
        composite = read_raster(path, chunks=chunks)
        if not grid.matches(composite):
            raise ValueError(f"{path}: the composite is not on the region grid {grid.to_dict()}")
        named[period] = named_bands(composite, path)
    terrain = {}
    if dem is not None and slope is not None:
        terrain = {"elevation": read_raster(dem, chunks=chunks), "slope": read_raster(slope, chunks=chunks)}
    return build_features(named, indices=indices, **terrain)
