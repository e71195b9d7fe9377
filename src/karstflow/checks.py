"""Checks of what a stage reads, shared by every stage, with one form of message.

Every message names the file, the variable or column, what was expected, what was found
and how many pixels or rows are affected::

    results/r/inputs/climate.nc, variable precipitation_mm: expected values >= 0 mm;
    found 1,204 of 6,400 values outside (min -3.2, max 1810)

* :func:`check_cube_dims`: a cube's variables are ``(..., y, x)`` in that order, with the
  leading dimensions a stage needs; ``lat``/``lon`` and ``(year, x, y)`` are named as such.
* :func:`check_range`: values within a physical range (dask-aware, one pass), and not all
  missing; :data:`VARIABLE_RANGES` holds the range and units of every canonical variable.
* :func:`check_variables`: :func:`check_range` for every canonical variable a cube holds.
* :func:`check_codes`: every land-cover code of a map has a row in a table.
* :func:`check_population_table`: a township population table has one row per township and
  year, within the region's years, for townships of the townships layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from karstflow.inputs import InputError

#: Names other tools give the spatial dimensions; karstflow's cubes use y and x.
SPATIAL_ALIASES = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x", "rows": "y", "cols": "x"}


@dataclass(frozen=True)
class Range:
    """A physical range: ``minimum`` <= value <= ``maximum`` (None: unbounded; with
    ``exclusive_minimum``, ``minimum`` < value)."""

    units: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False


#: The physical range of every canonical cube variable the stages read. Bounds are what
#: the variable can be, not what is typical: negative precipitation is impossible, a
#: temperature of 80 degC is a unit error (Kelvin, or degC x 10).
VARIABLE_RANGES: dict[str, Range] = {
    "precipitation_mm": Range("mm", 0.0),
    "eto_mm": Range("mm", 0.0),
    "solar_mj_m2": Range("MJ m-2", 0.0),
    "temperature_c": Range("degC", -90.0, 60.0),
    "ndvi": Range("", -1.0, 1.0),
    "evi": Range("", -1.0, 1.0),
    "bedrock_exposure": Range("fraction", 0.0, 1.0),
    "soil_depth_mm": Range("mm", 0.0),
    "pawc": Range("fraction", 0.0, 1.0),
    "sand_pct": Range("%", 0.0, 100.0),
    "silt_pct": Range("%", 0.0, 100.0),
    "clay_pct": Range("%", 0.0, 100.0),
    "organic_carbon_pct": Range("%", 0.0, 100.0),
    "population": Range("persons", 0.0),
}


def _dims_text(dims: Iterable[Any]) -> str:
    return "(" + ", ".join(map(str, dims)) + ")"


def check_cube_dims(
    ds: Any, *, source: str, leading: Sequence[str] | None = None, require_gridded: bool = True
) -> None:
    """Raise :class:`InputError` unless every gridded variable of ``ds`` is ``(*lead, y, x)``.

    ``leading``: the leading dimensions the stage needs (e.g. ``("year",)``); None accepts
    any. Variables without both y and x (a CRS variable, a time-bounds table) are skipped;
    with ``require_gridded`` a cube with no gridded variable at all is an error.
    """
    gridded = 0
    for name, var in ds.data_vars.items():
        dims = tuple(map(str, var.dims))
        aliases = {d: SPATIAL_ALIASES[d] for d in dims if d in SPATIAL_ALIASES}
        if aliases:
            renames = ", ".join(f"{a} -> {b}" for a, b in aliases.items())
            raise InputError(
                f"{source}, variable {name}: dimensions {_dims_text(dims)} use other names for the grid axes; "
                f"expected y and x (rename {renames}, e.g. ds.rename({aliases!r})) on the region grid's CRS"
            )
        if "y" not in dims or "x" not in dims:
            continue
        gridded += 1
        if dims[-2:] != ("y", "x"):
            order = tuple(d for d in dims if d not in ("y", "x")) + ("y", "x")
            raise InputError(
                f"{source}, variable {name}: dimensions {_dims_text(dims)}, expected {_dims_text(order)} "
                f"(rows before columns; e.g. ds.transpose{order!r})"
            )
        if leading is not None and dims[:-2] != tuple(leading):
            hint = ""
            if "time" in dims and "year" in leading:
                # a dated axis is not taken for years: monthly or several dates a year would
                # be averaged by a choice that is the data maker's
                hint = " (one value per year on an integer axis named year, e.g. ds.groupby('time.year').mean())"
            raise InputError(
                f"{source}, variable {name}: dimensions {_dims_text(dims)}, "
                f"expected {_dims_text((*leading, 'y', 'x'))}{hint}"
            )
    if require_gridded and not gridded:
        found = ", ".join(f"{n} {_dims_text(v.dims)}" for n, v in ds.data_vars.items()) or "no variables"
        raise InputError(f"{source}: no variable on (y, x); found {found}")


def _bounds_text(rng: Range) -> str:
    parts = []
    if rng.minimum is not None:
        parts.append(f"{'>' if rng.exclusive_minimum else '>='} {rng.minimum:g}")
    if rng.maximum is not None:
        parts.append(f"<= {rng.maximum:g}")
    units = f" {rng.units}" if rng.units else ""
    return " and ".join(parts) + units


def check_range(
    values: Any,
    rng: Range,
    *,
    source: str,
    variable: str | None,
    allow_empty: bool = False,
    hint: str = "",
    tolerance: float = 0.0,
) -> tuple[float, float]:
    """(min, max) of the finite values; raise :class:`InputError` when any lies outside
    ``rng`` or, unless ``allow_empty``, when none is finite.

    ``values``: a numpy array or a (dask-backed) DataArray; counted in one pass.
    ``variable``: None when ``source`` names it already (``climate.nc: eto_mm 2000``).
    ``tolerance``: how far past a bound a value may lie (float rounding of a computed index).
    """
    import dask
    import xarray as xr

    da = values if isinstance(values, xr.DataArray) else xr.DataArray(np.asarray(values))
    v = da.astype(np.float64)
    finite = np.isfinite(v)
    outside = finite & False
    if rng.minimum is not None:
        low = rng.minimum - tolerance
        outside = outside | ((v <= low) if rng.exclusive_minimum else (v < low))
    if rng.maximum is not None:
        outside = outside | (v > rng.maximum + tolerance)
    n_finite, n_out, vmin, vmax = dask.compute(finite.sum(), outside.sum(), v.min(skipna=True), v.max(skipna=True))
    n_finite, n_out, total = int(n_finite), int(n_out), int(v.size)
    where = source if variable is None else f"{source}, variable {variable}"
    if n_finite == 0:
        if allow_empty:
            return float("nan"), float("nan")
        raise InputError(
            f"{where}: all {total:,} values are missing (NaN or the fill value); expected values {_bounds_text(rng)}"
        )
    if n_out:
        raise InputError(
            f"{where}: expected values {_bounds_text(rng)}{hint}; found {n_out:,} of {total:,} values outside "
            f"(min {float(vmin):g}, max {float(vmax):g})"
        )
    return float(vmin), float(vmax)


def check_variables(ds: Any, *, source: str, required: Sequence[str] = (), allow_empty: bool = False) -> None:
    """:func:`check_range` for every variable of ``ds`` that :data:`VARIABLE_RANGES` knows;
    the ``required`` ones must be present."""
    missing = [v for v in required if v not in ds.data_vars]
    if missing:
        raise InputError(f"{source}: expected variable(s) {missing}, found {sorted(map(str, ds.data_vars))}")
    for name in ds.data_vars:
        rng = VARIABLE_RANGES.get(str(name))
        if rng is not None:
            check_range(ds[name], rng, source=source, variable=str(name), allow_empty=allow_empty)


def check_codes(
    map_codes: Iterable[int], table_codes: Iterable[int], *, table_source: str, column: str, map_source: str
) -> None:
    """Raise :class:`InputError` when a code present in a map has no row in a table."""
    present, have = sorted({int(c) for c in map_codes}), sorted({int(c) for c in table_codes})
    missing = sorted(set(present) - set(have))
    if missing:
        raise InputError(
            f"{table_source}, column {column}: land-cover code(s) {missing} of {map_source} have no row; "
            f"the table has {have}, the map has {present}"
        )


def map_codes(values: Any) -> list[int]:
    """The distinct codes of a land-cover map (NaN and negative fill values left out)."""
    a = np.asarray(values)
    if np.issubdtype(a.dtype, np.floating):
        a = a[np.isfinite(a)]
    codes = np.unique(a)
    return [int(c) for c in codes if c >= 0]


def _few(values: Iterable[Any], n: int = 5) -> str:
    items = list(values)
    more = f" ... ({len(items)} in all)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def check_population_table(
    table: Any,
    *,
    source: str,
    years: Sequence[int],
    township_ids: Iterable[int] | None = None,
    columns: dict[str, str] | None = None,
    townships_source: str = "the townships layer",
) -> None:
    """Raise :class:`InputError` unless a township population table (canonical columns
    ``township_id``, ``year``) has its years within ``years``, one row per township and
    year, and (with ``township_ids``) only townships of the townships layer.

    ``columns``: the owner's names of the canonical columns (``inputs.<name>.columns``),
    so a message names the column as it is in the file.
    """
    names = {c: (columns or {}).get(c, c) for c in ("township_id", "year")}
    year = table["year"].astype("int64")
    first, last = min(years), max(years)
    outside = ~year.isin(list(years))
    if outside.any():
        found = sorted({int(v) for v in year[outside]})
        raise InputError(
            f"{source}, column {names['year']}: expected years of the region ({first}..{last}); found "
            f"{int(outside.sum())} row(s) with year(s) outside: {_few(found)}"
        )
    key = table[["township_id", "year"]].astype("int64")
    dup = key.duplicated(keep=False)
    if dup.any():
        pairs = sorted({(int(t), int(y)) for t, y in key[dup].itertuples(index=False)})
        raise InputError(
            f"{source}, columns {names['township_id']} and {names['year']}: expected one row per township and "
            f"year; found {int(dup.sum())} rows of {len(pairs)} duplicate township-year(s): "
            f"{_few(f'{t}/{y}' for t, y in pairs)}"
        )
    if township_ids is not None:
        known = {int(i) for i in township_ids}
        unknown = ~key["township_id"].isin(sorted(known))
        if unknown.any():
            found = sorted({int(v) for v in key["township_id"][unknown]})
            raise InputError(
                f"{source}, column {names['township_id']}: expected township ids of {townships_source} "
                f"({_few(sorted(known))}); found {int(unknown.sum())} row(s) of unknown id(s): {_few(found)}"
            )
