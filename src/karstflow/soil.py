"""Soil grids for water yield and RUSLE from SoilGrids 250 m (ISRIC, SoilGrids 2.0).

The services read a soil NetCDF (dims y, x) with ``soil_depth_mm``, ``pawc`` (plant
available water content, volume fraction 0-1), ``sand_pct``, ``silt_pct``, ``clay_pct`` and
``organic_carbon_pct``. :func:`soilgrids_to_soil_grids` builds it from SoilGrids layers
``<property>_<depth>`` (e.g. ``sand_0-5cm``) read either from the public VRTs
(:func:`read_soilgrids`, through GDAL ``/vsicurl/``) or from cached tiles written by the
Earth Engine source (:func:`read_soil_bands`).

* Texture and SOC: depth-weighted means over the standard depths down to ``depth_cm``
  (weights = thickness of each interval inside 0..depth_cm).
* ``pawc``: Saxton & Rawls (2006) pedotransfer, eqs. 1 (theta_1500) and 2 (theta_33),
  PAW = theta_33 - theta_1500, from sand and clay (weight fractions) and organic matter
  OM (% weight) = 1.724 x SOC (the van Bemmelen factor, an assumption: SoilGrids gives
  organic carbon, Saxton & Rawls need organic matter). PAW is computed per layer and then
  depth-weighted. Where coarse fragments (``cfvo``) are given, PAW is reduced to the bulk
  soil by (1 - Rv), Rv the gravel volume fraction (Saxton & Rawls 2006, "gravel" section:
  the matric soil holds the water).
* ``soil_depth_mm``: a raster on the grid or a constant; a constant is flagged in the
  attributes (``soil_depth_is_constant = 1``) because it is not a spatial estimate.

References
----------
Poggio, L., de Sousa, L.M., Batjes, N.H., Heuvelink, G.B.M., Kempen, B., Ribeiro, E.,
Rossiter, D. (2021). SoilGrids 2.0: producing soil information for the globe with
quantified spatial uncertainty. SOIL 7, 217-240, doi:10.5194/soil-7-217-2021 (mapped units
and conversion factors: ISRIC SoilGrids FAQ, "What do the filename codes mean?").
Saxton, K.E., Rawls, W.J. (2006). Soil water characteristic estimates by texture and
organic matter for hydrologic solutions. Soil Sci. Soc. Am. J. 70, 1569-1578,
doi:10.2136/sssaj2005.0117.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr

from karstflow.grid import RegionGrid

log = logging.getLogger(__name__)

__all__ = [
    "SOILGRIDS_PROPERTIES",
    "STANDARD_DEPTHS",
    "SOILGRIDS_CRS",
    "OM_PER_SOC",
    "to_conventional",
    "depth_weights",
    "depths_down_to",
    "saxton_rawls_2006",
    "soilgrids_to_soil_grids",
    "soilgrids_vrt_urls",
    "read_soilgrids",
    "read_soil_bands",
]

#: SoilGrids 2.0 properties used here: mapped (stored) units, the factor that divides a
#: mapped value into conventional units, and those units (Poggio et al. 2021; ISRIC FAQ).
SOILGRIDS_PROPERTIES: dict[str, dict[str, Any]] = {
    "sand": {"mapped_units": "g/kg", "factor": 10.0, "conventional_units": "%", "long_name": "sand fraction"},
    "silt": {"mapped_units": "g/kg", "factor": 10.0, "conventional_units": "%", "long_name": "silt fraction"},
    "clay": {"mapped_units": "g/kg", "factor": 10.0, "conventional_units": "%", "long_name": "clay fraction"},
    "soc": {"mapped_units": "dg/kg", "factor": 10.0, "conventional_units": "g/kg", "long_name": "soil organic carbon"},
    "bdod": {"mapped_units": "cg/cm3", "factor": 100.0, "conventional_units": "kg/dm3", "long_name": "bulk density"},
    "cfvo": {
        "mapped_units": "cm3/dm3",
        "factor": 10.0,
        "conventional_units": "cm3/100cm3",
        "long_name": "coarse fragments, volumetric",
    },
}

#: SoilGrids standard depth intervals (cm): name -> (top, bottom).
STANDARD_DEPTHS: dict[str, tuple[int, int]] = {
    "0-5cm": (0, 5),
    "5-15cm": (5, 15),
    "15-30cm": (15, 30),
    "30-60cm": (30, 60),
    "60-100cm": (60, 100),
    "100-200cm": (100, 200),
}

#: The SoilGrids 2.0 VRTs' CRS: Interrupted Goode Homolosine on WGS84 (ISRIC FAQ).
SOILGRIDS_CRS = "+proj=igh +lat_0=0 +lon_0=0 +datum=WGS84 +units=m +no_defs"

#: Organic matter per organic carbon (van Bemmelen factor), OM = 1.724 x SOC.
OM_PER_SOC = 1.724

_LAYER = re.compile(r"^(?P<prop>[a-z0-9]+)_(?P<depth>\d+-\d+cm)$")

# unit (normalised) -> factor dividing it into %, for the fractions and SOC
_TO_PERCENT = {"g/kg": 10.0, "dg/kg": 100.0, "cg/kg": 1000.0, "%": 1.0, "g/100g": 1.0, "percent": 1.0}
# unit -> factor dividing it into volume % (cfvo)
_TO_VOL_PERCENT = {"cm3/dm3": 10.0, "cm3/100cm3": 1.0, "%": 1.0, "vol%": 1.0, "permille": 10.0}


def _norm(unit: Any) -> str:
    return re.sub(r"\s+", "", str(unit).strip().lower()).replace("^", "").replace("³", "3")


def to_conventional(values: Any, unit: str | None, prop: str, *, source: str, variable: str) -> tuple[Any, str]:
    """Sand/silt/clay/SOC to % (weight), cfvo to % (volume), from the layer's ``unit``.

    Raises ``ValueError`` naming ``source`` and ``variable`` for a missing or unknown unit.
    """
    if unit is None or str(unit).strip() == "":
        raise ValueError(f"{source}: variable {variable!r} has no units (expected e.g. 'g/kg', 'dg/kg')")
    table = _TO_VOL_PERCENT if prop == "cfvo" else _TO_PERCENT
    u = _norm(unit)
    if u not in table:
        raise ValueError(
            f"{source}: variable {variable!r} has units {unit!r}; for {prop} expected one of {sorted(table)}"
        )
    f = table[u]
    return values / f, f"{variable}: {unit} / {f:g} -> %"


def depth_weights(depth_cm: float, depths: Iterable[str] = STANDARD_DEPTHS) -> dict[str, float]:
    """Weights (summing to 1) of the standard intervals for a mean over 0..``depth_cm``.

    An interval's weight is its thickness inside 0..depth_cm over depth_cm. Raises for a
    depth outside (0, 200] cm or an unknown interval name.
    """
    if not 0 < float(depth_cm) <= 200:
        raise ValueError(f"soil depth_cm must be in (0, 200] (SoilGrids' standard depths), found {depth_cm!r}")
    w: dict[str, float] = {}
    for name in depths:
        if name not in STANDARD_DEPTHS:
            raise ValueError(f"unknown SoilGrids depth {name!r}; standard depths are {list(STANDARD_DEPTHS)}")
        top, bottom = STANDARD_DEPTHS[name]
        inside = max(0.0, min(bottom, float(depth_cm)) - top)
        if inside > 0:
            w[name] = inside / float(depth_cm)
    return w


def depths_down_to(depth_cm: float) -> list[str]:
    """The standard depth intervals that a mean over 0..``depth_cm`` uses (top to bottom)."""
    return list(depth_weights(depth_cm))


def saxton_rawls_2006(sand_frac: Any, clay_frac: Any, om_pct: Any) -> dict[str, Any]:
    """Saxton & Rawls (2006) water contents (volume fractions) from texture and OM.

    ``sand_frac``, ``clay_frac``: weight fractions (0-1); ``om_pct``: organic matter, % weight.
    Returns ``theta_1500`` (eq. 1, permanent wilting point), ``theta_33`` (eq. 2, field
    capacity) and ``paw`` = theta_33 - theta_1500. The equations were fitted for OM <= 8 %
    and clay <= 60 %; outside that they extrapolate.
    """
    s, c, om = sand_frac, clay_frac, om_pct
    t1500t = -0.024 * s + 0.487 * c + 0.006 * om + 0.005 * (s * om) - 0.013 * (c * om) + 0.068 * (s * c) + 0.031
    t1500 = t1500t + (0.14 * t1500t - 0.02)  # eq. 1
    t33t = -0.251 * s + 0.195 * c + 0.011 * om + 0.006 * (s * om) - 0.027 * (c * om) + 0.452 * (s * c) + 0.299
    t33 = t33t + (1.283 * t33t**2 - 0.374 * t33t - 0.015)  # eq. 2
    return {"theta_1500": t1500, "theta_33": t33, "paw": t33 - t1500}


def _layer(raw: xr.Dataset, prop: str, depth: str) -> xr.DataArray:
    name = f"{prop}_{depth}"
    if name not in raw.data_vars:
        src = raw.attrs.get("source", "SoilGrids layers")
        raise ValueError(f"{src}: missing layer {name!r}; found {sorted(map(str, raw.data_vars))}")
    return raw[name]


def soilgrids_to_soil_grids(
    raw: xr.Dataset,
    *,
    depth_cm: float,
    soil_depth_mm: xr.DataArray | float,
    source: str,
) -> xr.Dataset:
    """SoilGrids layers ``<property>_<depth>`` (y, x) -> the soil grids the services read.

    ``raw`` holds sand, silt, clay and soc for every standard depth above ``depth_cm``
    (``cfvo`` optional), each with a ``units`` attribute (mapped units such as ``g/kg``,
    ``dg/kg``, or ``%``). Returns ``sand_pct``, ``silt_pct``, ``clay_pct``,
    ``organic_carbon_pct`` (depth-weighted means, %), ``pawc`` (Saxton & Rawls 2006,
    see the module docstring) and ``soil_depth_mm`` (the raster, or ``soil_depth_mm``
    broadcast as a constant and flagged).
    """
    weights = depth_weights(depth_cm)
    conv: list[str] = []
    have_cfvo = all(f"cfvo_{d}" in raw.data_vars for d in weights)
    mean: dict[str, Any] = {p: 0.0 for p in ("sand", "silt", "clay", "soc")}
    paw = 0.0
    for depth, w in weights.items():
        layer: dict[str, Any] = {}
        for prop in ("sand", "silt", "clay", "soc") + (("cfvo",) if have_cfvo else ()):
            da = _layer(raw, prop, depth)
            pct, what = to_conventional(
                da.astype(np.float64), da.attrs.get("units"), prop, source=source, variable=f"{prop}_{depth}"
            )
            conv.append(what)
            layer[prop] = pct
        for prop in mean:
            mean[prop] = mean[prop] + w * layer[prop]
        sr = saxton_rawls_2006(layer["sand"] / 100.0, layer["clay"] / 100.0, OM_PER_SOC * layer["soc"])
        p = sr["paw"]
        if have_cfvo:
            p = p * (1.0 - layer["cfvo"] / 100.0)
        paw = paw + w * p
    template = _layer(raw, "sand", next(iter(weights)))
    if isinstance(soil_depth_mm, xr.DataArray):
        depth_grid = soil_depth_mm.astype(np.float64)
        if depth_grid.shape != template.shape:
            raise ValueError(
                f"{source}: soil_depth_mm raster has shape {depth_grid.shape}, the soil layers {template.shape}"
            )
        depth_grid = xr.DataArray(depth_grid.values, dims=template.dims, coords=template.coords)
        depth_src = f"raster {soil_depth_mm.attrs.get('source', soil_depth_mm.name or 'soil_depth_mm')}"
        is_constant = 0
    else:
        value = float(soil_depth_mm)
        if not value > 0:
            raise ValueError(f"{source}: soil_depth_mm must be > 0, found {soil_depth_mm!r}")
        depth_grid = xr.full_like(template, value, dtype=np.float64)
        depth_src = f"constant {value:g} mm (not a spatial estimate)"
        is_constant = 1
    weight_text = ", ".join(f"{d} {w:.4g}" for d, w in weights.items())
    out = xr.Dataset(
        {
            "sand_pct": mean["sand"].astype(np.float32).assign_attrs(units="%", long_name="sand, % weight"),
            "silt_pct": mean["silt"].astype(np.float32).assign_attrs(units="%", long_name="silt, % weight"),
            "clay_pct": mean["clay"].astype(np.float32).assign_attrs(units="%", long_name="clay, % weight"),
            "organic_carbon_pct": mean["soc"]
            .astype(np.float32)
            .assign_attrs(units="%", long_name="soil organic carbon, % weight"),
            "pawc": xr.DataArray(paw)
            .astype(np.float32)
            .assign_attrs(
                units="1",
                long_name="plant available water content (volume fraction)",
                method=(
                    "Saxton & Rawls (2006) eqs. 1-2, theta_33 - theta_1500, per layer then depth_grid-weighted; "
                    f"OM = {OM_PER_SOC} x SOC (assumed van Bemmelen factor)"
                    + ("; x (1 - cfvo) for coarse fragments" if have_cfvo else "; no coarse-fragment correction")
                ),
            ),
            "soil_depth_mm": depth_grid.astype(np.float32).assign_attrs(
                units="mm", long_name="soil depth", source=depth_src
            ),
        }
    )
    for v in ("sand_pct", "silt_pct", "clay_pct", "organic_carbon_pct"):
        out[v].attrs["aggregation"] = f"depth-weighted mean over 0-{depth_cm:g} cm ({weight_text})"
    out.attrs.update(
        source=source,
        conversions="; ".join(conv),
        depth_cm=float(depth_cm),
        soil_depth_source=depth_src,
        soil_depth_is_constant=is_constant,
    )
    crs = raw.rio.crs
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------


def soilgrids_vrt_urls(
    base_url: str, properties: Sequence[str], depths: Sequence[str], *, quantile: str = "mean"
) -> dict[str, str]:
    """``<property>_<depth>`` -> URL of the SoilGrids VRT.

    The public layout is ``{base_url}/{prop}/{prop}_{depth}_{quantile}.vrt`` with the tiles in
    ``{prop}/{prop}_{depth}_{quantile}/`` next to it; ``base_url`` is e.g.
    ``https://files.isric.org/soilgrids/latest/data``.
    """
    base = base_url.rstrip("/")
    out: dict[str, str] = {}
    for prop in properties:
        if prop not in SOILGRIDS_PROPERTIES:
            raise ValueError(f"unknown SoilGrids property {prop!r}; known: {sorted(SOILGRIDS_PROPERTIES)}")
        for depth in depths:
            if depth not in STANDARD_DEPTHS:
                raise ValueError(f"unknown SoilGrids depth {depth!r}; standard depths are {list(STANDARD_DEPTHS)}")
            out[f"{prop}_{depth}"] = f"{base}/{prop}/{prop}_{depth}_{quantile}.vrt"
    return out


def _gdal_path(url: str) -> str:
    if url.startswith(("http://", "https://")):
        return "/vsicurl/" + url
    return url


def _wrapper_vrt(gdal_path: str, dest: str) -> None:
    """A local one-band VRT pointing at ``gdal_path`` (so harmonise can open a remote raster)."""
    import rasterio

    with rasterio.open(gdal_path) as ds:
        if ds.count != 1:
            raise ValueError(f"{gdal_path}: expected 1 band, found {ds.count}")
        if ds.crs is None:
            raise ValueError(f"{gdal_path}: no CRS")
        t, w, h, dtype, nodata, wkt = ds.transform, ds.width, ds.height, ds.dtypes[0], ds.nodata, ds.crs.to_wkt()
    gdal_type = {
        "uint8": "Byte",
        "int8": "Int8",
        "int16": "Int16",
        "uint16": "UInt16",
        "int32": "Int32",
        "uint32": "UInt32",
        "float32": "Float32",
        "float64": "Float64",
    }[dtype]
    nd = "" if nodata is None else f"<NoDataValue>{nodata!r}</NoDataValue>"
    src_nd = "" if nodata is None else f"<NODATA>{nodata!r}</NODATA>"
    xml = (
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">'
        f"<SRS>{escape(wkt)}</SRS>"
        f"<GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"
        f'<VRTRasterBand dataType="{gdal_type}" band="1">{nd}'
        f'<ComplexSource><SourceFilename relativeToVRT="0">{escape(gdal_path)}</SourceFilename>'
        f"<SourceBand>1</SourceBand>"
        f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/><DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f"{src_nd}</ComplexSource></VRTRasterBand></VRTDataset>"
    )
    Path(dest).write_text(xml)


def read_soilgrids(
    base_url: str,
    grid: RegionGrid,
    *,
    properties: Sequence[str] = ("sand", "silt", "clay", "soc"),
    depths: Sequence[str] = tuple(STANDARD_DEPTHS),
    resampling: str = "average",
) -> xr.Dataset:
    """Read SoilGrids VRTs (``{base_url}/{prop}/{prop}_{depth}_mean.vrt``) onto ``grid``.

    Remote URLs go through GDAL ``/vsicurl/`` (directory listing disabled, so only the VRT
    and the tiles it names are fetched); each layer is put on the grid by
    :func:`karstflow.harmonise.raster_to_grid` with ``resampling`` (``average`` when the grid
    is coarser than 250 m, ``bilinear`` when finer). Values stay in mapped units (``units``
    attribute from :data:`SOILGRIDS_PROPERTIES`); SoilGrids' nodata becomes NaN.
    """
    import rasterio

    from karstflow.harmonise import raster_to_grid

    if resampling not in ("average", "bilinear", "nearest"):
        raise ValueError(f"read_soilgrids: resampling must be 'average', 'bilinear' or 'nearest', found {resampling!r}")
    urls = soilgrids_vrt_urls(base_url, properties, depths)
    ds = xr.Dataset()
    env = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": "3", "GDAL_HTTP_RETRY_DELAY": "1"}
    with tempfile.TemporaryDirectory(prefix="karstflow-soilgrids-") as tmp, rasterio.Env(**env):
        for name, url in urls.items():
            local = os.path.join(tmp, f"{name}.vrt")
            try:
                _wrapper_vrt(_gdal_path(url), local)
            except rasterio.errors.RasterioIOError as e:
                raise ValueError(f"SoilGrids layer {name}: cannot open {url}: {e}") from e
            da = raster_to_grid(local, grid, resampling=resampling, source=f"SoilGrids {name} ({url})")
            prop = name.split("_", 1)[0]
            ds[name] = da.astype(np.float32).assign_attrs(
                units=SOILGRIDS_PROPERTIES[prop]["mapped_units"], source_file=url, resampling=resampling
            )
    ds = ds.rio.write_crs(grid.crs)
    ds.attrs["source"] = f"SoilGrids 2.0 ({base_url}, {resampling})"
    return ds


def read_soil_bands(files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], grid: RegionGrid) -> xr.Dataset:
    """Cached soil tiles (bands ``<property>_<depth>`` with a ``units`` tag) -> raw Dataset (y, x).

    Tiles are mosaicked with :func:`karstflow.sources.rasters.read_window` (nearest, i.e.
    copied when on the grid's lattice); the first file given wins where tiles overlap.
    Raises ``ValueError`` naming the file and band for a malformed description, a missing
    units tag, or units differing between tiles of one layer.
    """
    import rasterio

    from karstflow.sources.rasters import read_window

    paths = [os.fspath(files)] if isinstance(files, str | os.PathLike) else [os.fspath(f) for f in files]
    if not paths:
        raise ValueError("read_soil_bands: no files given")
    arrays: dict[str, np.ndarray] = {}
    have: dict[str, np.ndarray] = {}
    units: dict[str, str] = {}
    files_of: dict[str, list[str]] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"soil tile not found: {path}")
        with rasterio.open(path) as src:
            descs = list(src.descriptions)
            tags = [src.tags(i + 1) for i in range(src.count)]
        names = []
        for i, desc in enumerate(descs):
            m = _LAYER.match(desc or "")
            if not m or m["depth"] not in STANDARD_DEPTHS:
                raise ValueError(
                    f"{path}: band {i + 1} description {desc!r} is not '<property>_<depth>' (e.g. sand_0-5cm)"
                )
            unit = tags[i].get("units") or tags[i].get("UNITS")
            if not unit:
                raise ValueError(f"{path}: band {i + 1} ({desc}) has no 'units' tag")
            if desc in units and _norm(units[desc]) != _norm(unit):
                raise ValueError(f"{path}: layer {desc} has units {unit!r}, another tile {units[desc]!r}")
            units.setdefault(desc, unit)
            names.append(desc)
        data, valid = read_window(path, list(range(1, len(descs) + 1)), grid, (0, 0, grid.height, grid.width))
        for i, name in enumerate(names):
            files_of.setdefault(name, []).append(path)
            band = data[i].astype(np.float64)
            if name not in arrays:
                arrays[name] = np.where(valid[i], band, np.nan)
                have[name] = valid[i].copy()
            else:
                fill = valid[i] & ~have[name]
                arrays[name][fill] = band[fill]
                have[name] |= fill
    coords = grid.coords()
    ds = xr.Dataset(coords={"y": coords["y"], "x": coords["x"]})
    for name in sorted(arrays):
        ds[name] = xr.DataArray(
            arrays[name].astype(np.float32),
            dims=("y", "x"),
            attrs={"units": units[name], "source_file": ", ".join(files_of[name])},
        )
    ds = ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    ds.attrs["source"] = ", ".join(paths)
    return ds
