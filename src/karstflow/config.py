"""Configuration checks with messages that name the offending key.

The workflow validates its config against ``workflow/schemas/config.schema.yaml`` at
start-up. jsonschema's own messages bury the key path; :func:`check_config` reports
``config key regions.demo-county.resolution_m: expected number, found 'ten'`` instead,
and adds the checks a schema cannot express (years in order, inputs per source).
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import yaml

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
SOURCES_AVAILABLE = ("local", "stac", "earthengine")
#: Default of ``grid.max_pixels``: the southwest China karst at 10 m (5.4e9 px) fits; a
#: resolution typed in the wrong unit (0.01 for 10) does not.
MAX_PIXELS_DEFAULT = 10_000_000_000


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key, the expectation and the value."""


# libyaml's parser when PyYAML has it (the wheels do): the same safe constructor, and the
# 120 KB config schema loads in 0.06 s instead of 0.35 s, at every Snakemake start-up
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` through libyaml when it is available."""
    return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


def check_yaml_file(path: str | Path) -> None:
    """Raise :class:`ConfigError` naming the file, line and column of a YAML syntax error.

    Snakemake's own message for a config file that does not parse names neither ("Config
    file is not valid JSON or YAML", snakemake/common/configfile.py), so the Snakefile
    parses its config file with this first. Files given with ``--configfile`` are read by
    Snakemake's command line before the Snakefile runs, so they keep Snakemake's message.
    """
    path = Path(path)
    try:
        load_yaml(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:

        def at(mark: Any) -> str:
            return f"line {mark.line + 1}, column {mark.column + 1}"

        mark = err.problem_mark or err.context_mark
        where = f", {at(mark)}" if mark is not None else ""
        context = f" ({err.context} at {at(err.context_mark)})" if err.context and err.context_mark else ""
        raise ConfigError(f"{path}{where}: YAML syntax error: {err.problem or err.context}{context}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML syntax error: {err}") from None


@functools.lru_cache(maxsize=8)
def _load_schema_cached(path: str) -> dict[str, Any]:
    return load_yaml(Path(path).read_text())


def load_schema(path: str | Path) -> dict[str, Any]:
    """The config schema at ``path``: parsed once per process, a fresh copy per call."""
    return copy.deepcopy(_load_schema_cached(str(Path(path).resolve())))


def _key_path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _format_error(err: Any) -> str:
    path = _key_path(err.absolute_path)
    v = err.validator
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, Mapping) else []
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"config key {path}: unknown key(s) {', '.join(map(repr, extra))}{hint}"
    if v == "type":
        found = f"{_describe(err.instance)} ({type(err.instance).__name__})"
        return f"config key {path}: expected {err.validator_value}, found {found}"
    if v == "required":
        return f"config key {path}: {err.message}"
    if v == "enum":
        return f"config key {path}: expected one of {err.validator_value}, found {_describe(err.instance)}"
    if v == "propertyNames" or (v == "pattern" and "slug" in str(err.schema.get("description", "")).lower()):
        return f"config key {path}: {err.message}"
    return f"config key {path}: {err.message}"


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _scalar_from_text(text: str, types: set[str]) -> Any:
    value = load_yaml(text)
    if "boolean" in types and isinstance(value, bool):
        return value
    if "integer" in types and isinstance(value, int) and not isinstance(value, bool):
        return value
    if "number" in types and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return text


def coerce_cli_strings(config: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """Turn numeric/boolean text into numbers/booleans where the schema expects them.

    ``snakemake --config terrain='{flat_max_deg: 7.5}'`` parses nested values with YAML's
    BaseLoader, so every leaf arrives as text; without this a command-line override of a
    number would be rejected as a string. Text that does not parse stays text (and then
    fails validation with the usual message).
    """
    root = root or schema
    schema = _resolve(schema, root)
    if isinstance(config, str):
        types = schema.get("type")
        types = {types} if isinstance(types, str) else set(types or ())
        if types & {"number", "integer", "boolean"} and "string" not in types:
            return _scalar_from_text(config, types)
        return config
    if isinstance(config, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        out = {}
        for key, value in config.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else None)
            out[key] = coerce_cli_strings(value, sub, root) if sub is not None else value
        return out
    if isinstance(config, list) and isinstance(schema.get("items"), Mapping):
        return [coerce_cli_strings(v, schema["items"], root) for v in config]
    return config


def check_region_ids(config: Mapping[str, Any]) -> None:
    """Region ids and period names become paths: allow lowercase letters, digits, dashes."""
    regions = config.get("regions")
    if not isinstance(regions, Mapping):
        return
    for region_id, region in regions.items():
        if not isinstance(region_id, str) or not SLUG.match(region_id):
            raise ConfigError(
                f"config key regions: region id {region_id!r} is not allowed; ids become folder "
                "names, so use lowercase letters, digits and single dashes only (e.g. 'xunwu-county')"
            )
        periods = region.get("periods") if isinstance(region, Mapping) else None
        for name in periods or {}:
            if not isinstance(name, str) or not SLUG.match(name):
                raise ConfigError(
                    f"config key regions.{region_id}.periods: period name {name!r} is not allowed; "
                    "use lowercase letters, digits and single dashes only"
                )


def check_config(config: Mapping[str, Any], schema: Mapping[str, Any], workdir: str | Path = ".") -> None:
    """Raise :class:`ConfigError` for the first problem found, naming the key path."""
    import jsonschema

    check_region_ids(config)
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(
        validator.iter_errors(config), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path)))
    )
    if errors:
        # The deepest error is the most specific one (oneOf/anyOf wrap their branches).
        best = jsonschema.exceptions.best_match(errors)
        raise ConfigError(_format_error(best))
    _check_semantics(config, Path(workdir))


def fill_defaults(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Write the schema's ``default`` of every property ``config`` leaves out, in place.

    What ``snakemake.utils.validate(..., set_default=True)`` does (the recipe of the
    jsonschema FAQ, "Why doesn't my schema's default property set the default on my
    instance?"), on the schema :func:`load_schema` already parsed: snakemake's validate
    parses the 120 KB schema again with its pure-Python YAML reader, 0.5 s at every start-up.
    Run :func:`check_config` first; errors are its job. Each default is a copy, so two
    regions never share one mutable default.
    """
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):  # type: ignore[no-untyped-def]
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop and name not in instance:
                    instance[name] = copy.deepcopy(prop["default"])
        yield from validate_properties(validator, properties, instance, subschema)

    filler = jsonschema.validators.extend(base, {"properties": set_defaults})
    for _ in filler(schema).iter_errors(config):
        pass


def _check_semantics(config: Mapping[str, Any], workdir: Path) -> None:
    for rid, region in config["regions"].items():
        key = f"regions.{rid}"
        years = region["years"]
        if years["first"] > years["last"]:
            raise ConfigError(f"config key {key}.years: first ({years['first']}) is after last ({years['last']})")
        for name, period in (region.get("periods") or {}).items():
            start, end = date.fromisoformat(str(period["start"])), date.fromisoformat(str(period["end"]))
            if start > end:
                raise ConfigError(f"config key {key}.periods.{name}: start {start} is after end {end}")
        source = region["source"]
        if not region.get("grid_like"):
            for name in ("aoi", "crs", "resolution_m"):
                if name not in region:
                    raise ConfigError(
                        f"config key {key}.{name}: required unless grid_like names a raster to take the grid from"
                    )
        inputs = region.get("inputs") or {}
        # a local region without a DEM simply does not get the terrain stage (its plan says so)
        if source == "local" and region.get("periods") and not inputs.get("imagery"):
            raise ConfigError(
                f"config key {key}.inputs.imagery: required when a local region has periods "
                "(date_table: a CSV of per-date files, stacks: one time stack per band, or safe: "
                "Sentinel-2 L2A SAFE products)"
            )
        # whether input files exist is checked once the rules are known (a rule may make
        # them, as the demo generators do): common.smk check_input_files
        # earthengine credentials are checked when the fetch rules run (GOOGLE_APPLICATION_CREDENTIALS)
        aoi_path = (region.get("aoi") or {}).get("path")
        if aoi_path and not (workdir / aoi_path).exists():
            raise ConfigError(f"config key {key}.aoi.path: file not found: {aoi_path}")
        if source not in SOURCES_AVAILABLE:
            raise ConfigError(
                f"config key {key}.source: {source!r} acquisition is not available in this version "
                f"(available: {', '.join(SOURCES_AVAILABLE)})"
            )
        _check_periods_in_years(key, region)
        if "crs" in region:
            _check_crs(f"{key}.crs", region["crs"])
        if aoi_path:
            _check_aoi_file(f"{key}.aoi.path", workdir / aoi_path)
        _check_grid_size(key, region, workdir, int((config.get("grid") or {}).get("max_pixels", MAX_PIXELS_DEFAULT)))
    _check_output_paths(config, workdir)


def _check_periods_in_years(key: str, region: Mapping[str, Any]) -> None:
    """A period must lie within the region's years: its composites feed stages that read
    only those years, so a period outside them would be fetched and never used."""
    first, last = region["years"]["first"], region["years"]["last"]
    for name, period in (region.get("periods") or {}).items():
        start, end = date.fromisoformat(str(period["start"])), date.fromisoformat(str(period["end"]))
        if start.year < first or end.year > last:
            raise ConfigError(
                f"config key {key}.periods.{name}: {start}..{end} lies outside the region's years "
                f"{first}..{last} ({key}.years); move the period or widen the years"
            )


def _check_crs(key: str, value: str) -> None:
    """An unknown CRS named by its config key, not by PROJ's internal text."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(value)
    except CRSError:
        raise ConfigError(
            f"config key {key}: unknown CRS {value!r}; expected an EPSG code known to PROJ "
            "(e.g. EPSG:32648, UTM 48N) or a WKT string"
        ) from None


def _check_aoi_file(key: str, path: Path) -> None:
    """The AOI file opens, has features and a CRS; read from its header (pyogrio.read_info)."""
    import pyogrio

    try:
        info = pyogrio.read_info(path)
    except Exception as err:  # noqa: BLE001 (GDAL's errors are many; the message says which)
        raise ConfigError(f"config key {key}: {path} cannot be read as a vector file: {err}") from None
    if not info["features"]:
        raise ConfigError(f"config key {key}: {path} has no features; the AOI needs at least one polygon")
    if not info["crs"]:
        raise ConfigError(
            f"config key {key}: {path} has no CRS, so its extent cannot be put on the grid; "
            "set one (e.g. ogr2ogr -a_srs EPSG:4326)"
        )


def _check_grid_size(key: str, region: Mapping[str, Any], workdir: Path, max_pixels: int) -> None:
    from karstflow.grid import check_pixel_count, startup_pixels

    px = startup_pixels(region, workdir)
    if px is None:
        return
    if region.get("grid_like"):
        where, what = f"{key}.grid_like", f"the grid of {region['grid_like']}"
    else:
        where, what = f"{key}.resolution_m", f"the region grid at {region['resolution_m']} m"
    try:
        check_pixel_count(px, max_pixels, what)
    except ValueError as err:
        raise ConfigError(f"config key {where}: {err}") from None


#: Config keys that set where something is written (the schema's only one: the tile cache).
OUTPUT_PATH_KEYS: tuple[tuple[str, ...], ...] = (("imagery", "cache_dir"),)
#: Folders of the project (the working directory) that outputs may be written under.
OUTPUT_ROOTS = ("resources", "results")


def _check_output_paths(config: Mapping[str, Any], workdir: Path) -> None:
    """Every configurable output path resolves inside ``resources/`` or ``results/`` of the
    project: symlinks and ``..`` are resolved first (``Path.resolve``), for the value and
    for the two folders alike (either may be a symlink to a data disk), so neither
    ``../escape`` nor a link pointing out of the project gets through."""
    roots = [(workdir / name).resolve() for name in OUTPUT_ROOTS]
    for keys in OUTPUT_PATH_KEYS:
        node: Any = config
        for k in keys:
            node = node.get(k) if isinstance(node, Mapping) else None
        if node is None:
            continue
        target = (workdir / str(node)).resolve()
        if not any(target.is_relative_to(r) for r in roots):
            raise ConfigError(
                f"config key {'.'.join(keys)}: must be inside {' or '.join(r + '/' for r in OUTPUT_ROOTS)} of the "
                f"project, found {str(node)!r} (resolves to {target})"
            )
