"""Memory and runtime of a workflow job from the work it does, calibrated on measured runs.

Every rule writes a Snakemake ``benchmark:`` table (``logs/benchmarks/<region>/<rule>.tsv``, and
``.../tiles/<tile>/<rule>.tsv`` for a tile job) whose ``max_rss`` (MB, peak resident memory of
the job's processes) and ``s`` (wall seconds) are what a scheduler needs to know in advance.
For the per-pixel and per-neighbourhood stages both grow about linearly with the *work* of a
job: the pixels of its window (a tile's window includes its halo) times its layers (the years
of a cube). A rule's need is therefore modelled as

    need = base + slope x work            (work in megapixel-layers, 1 Mpx = 10**6 px)

fitted per rule on the benchmark tables of runs at different region sizes
(``benchmarks/calibrate_resources.py`` writes ``workflow/resources.yaml``). The fitted line is
the least-squares line shifted up until it covers every measured job (an upper envelope, so no
calibration job needed more than the line gives), and :func:`estimate` multiplies it by a
safety factor, applies a floor and scales it by the attempt, so a job that is retried after
running out of memory or time asks for more (Snakemake ``--retries``; resource functions that
take ``attempt``: https://snakemake.readthedocs.io/en/stable/snakefiles/rules.html#resources).

Snakemake's ``runtime`` resource is in minutes and ``mem_mb`` in megabytes; the Slurm executor
passes them as ``--time`` and ``--mem``
(https://snakemake.github.io/snakemake-plugin-catalog/plugins/executor/slurm.html).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from karstflow.grid import RegionGrid
from karstflow.tiling import TILE_ID, tile_of, with_halo

PathLike = str | os.PathLike[str]

#: The calibration the workflow reads (beside the rules).
DEFAULT_CALIBRATION = Path(__file__).resolve().parents[2] / "workflow" / "resources.yaml"

#: Rules whose work has a time axis over the region's years (cubes): their work is
#: pixels x years; every other rule's is pixels x 1. A rule with a ``{year}`` wildcard works
#: on one year and is not listed. The mosaic of a listed rule's tiles (``<rule>_mosaic``)
#: writes the cube too and counts the years as well.
YEAR_LAYER_RULES = frozenset(
    {
        "demo_karst",
        "inputs_cube",
        "climate_monthly",
        "climate_annual",
        "vegetation_stack",
        "greening_cube",
        "greening_trend",
        "carbon_npp",
        "desertification_grades",
        "desertification_summary",
    }
)

#: Floors of every estimate: below them a job's interpreter and imports dominate (the
#: smallest measured job, region_plan, peaks at about 150 MB) and a scheduler's granularity
#: is a minute.
MEM_FLOOR_MB = 500
RUNTIME_FLOOR_MIN = 1
#: Memory of the Snakemake process that runs a job inside its allocation, on top of the
#: script the benchmark measures, for a calibration that does not give its own
#: ``job_process_mb``: on the local Slurm, sacct's MaxRSS of a job step was 474-673 MB where
#: the script's own max_rss was 225-300 MB (tests/test_slurm.py). workflow/resources.yaml
#: sets 800: in the 4-tile benchmark run through Slurm, sacct's MaxRSS exceeded the script's
#: max_rss by a median 186 MB and up to 797 MB (the soil retention tiles).
JOB_PROCESS_MB = 400
#: Safety factors on the fitted envelope. Memory (max_rss) repeats within a few per cent
#: between runs; wall time on a shared machine varies by a factor of two or more.
MEM_SAFETY = 1.2
RUNTIME_SAFETY = 2.0
#: A memory slope counts as measured when the line rises by more than BASELINE_SPREAD_MB over
#: the calibration jobs' range of work: the same job at the same size peaks up to ~230 MB apart
#: between runs (services_soil_retention on the tiny karst demo: 133 MB in one run, 366 MB in
#: the test suite's; code version, numba compiling its kernels), so a smaller rise is noise. A
#: rule without a measured slope gets PRIOR_MEM_MB_PER_MPX (about a dozen float64 arrays per
#: pixel-layer; the slopes that do show at the calibration sizes are 126-604 MB/Mpx-layer), its
#: base still covering every job.
BASELINE_SPREAD_MB = 250.0
#: The same for wall time: a job's start-up (interpreter, imports) took 2 s in one run and
#: 100 s in another on the shared machine, so a rise of up to BASELINE_SPREAD_S is noise, and a
#: rule without a measured time slope gets PRIOR_TIME_S_PER_MPX (the CPU-time slopes that do
#: show are 94-400 s/Mpx: imagery_composite, climate_monthly, demo_county).
BASELINE_SPREAD_S = 100.0
PRIOR_TIME_S_PER_MPX = 60.0
PRIOR_MEM_MB_PER_MPX = 100.0
#: Pixels assumed for a job whose region size cannot be known yet (no grid.json, no AOI
#: bounds): a 1,000 x 1,000 px region (the county-size karst demo).
FALLBACK_PIXELS = 1_000_000


@dataclass(frozen=True)
class RuleModel:
    """The fitted need of one rule: ``base + slope x work`` for memory (MB) and wall time (s)."""

    mem_base_mb: float
    mem_mb_per_mpx: float
    time_base_s: float
    time_s_per_mpx: float
    layers: str = "1"  # "1" or "years"
    mem_mb_per_thread: float = 0.0
    jobs: int = 0
    max_work_mpx: float = 0.0
    # "fit"; "prior": PRIOR_MEM_MB_PER_MPX (jobs too small to measure it); "bound": flat over a
    # long range, the largest slope BASELINE_SPREAD_MB hides (benchmarks/calibrate_resources.py)
    mem_slope_from: str = "fit"
    time_slope_from: str = "fit"  # the same with PRIOR_TIME_S_PER_MPX, BASELINE_SPREAD_S

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> RuleModel:
        try:
            return cls(
                mem_base_mb=float(d["mem_base_mb"]),
                mem_mb_per_mpx=float(d["mem_mb_per_mpx"]),
                time_base_s=float(d["time_base_s"]),
                time_s_per_mpx=float(d["time_s_per_mpx"]),
                layers=str(d.get("layers", "1")),
                mem_mb_per_thread=float(d.get("mem_mb_per_thread", 0.0)),
                jobs=int(d.get("jobs", 0)),
                max_work_mpx=float(d.get("max_work_mpx", 0.0)),
                mem_slope_from=str(d.get("mem_slope_from", "fit")),
                time_slope_from=str(d.get("time_slope_from", "fit")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(
                f"{where}: expected mem_base_mb, mem_mb_per_mpx, time_base_s, time_s_per_mpx as numbers; "
                f"found {dict(d)!r} ({err})"
            ) from err

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": self.layers,
            "mem_base_mb": round(self.mem_base_mb, 1),
            "mem_mb_per_mpx": round(self.mem_mb_per_mpx, 3),
            "mem_slope_from": self.mem_slope_from,
            "mem_mb_per_thread": round(self.mem_mb_per_thread, 1),
            "time_base_s": round(self.time_base_s, 2),
            "time_s_per_mpx": round(self.time_s_per_mpx, 3),
            "time_slope_from": self.time_slope_from,
            "jobs": self.jobs,
            "max_work_mpx": round(self.max_work_mpx, 4),
        }


#: The need of a rule missing from the calibration: the largest base and slope of the
#: calibrated rules when the calibration gives its own ``default``, else this (4 GB as the
#: rules declared before calibration, plus 2 GB and 10 minutes per megapixel).
FALLBACK_RULE = RuleModel(mem_base_mb=4000, mem_mb_per_mpx=2000, time_base_s=300, time_s_per_mpx=600)


@dataclass(frozen=True)
class Calibration:
    """Per-rule models plus the factors :func:`estimate` applies."""

    rules: Mapping[str, RuleModel]
    default: RuleModel = FALLBACK_RULE
    mem_safety: float = MEM_SAFETY
    runtime_safety: float = RUNTIME_SAFETY
    mem_floor_mb: int = MEM_FLOOR_MB
    runtime_floor_min: int = RUNTIME_FLOOR_MIN
    job_process_mb: int = JOB_PROCESS_MB
    fitted_from: Sequence[Mapping[str, Any]] = field(default_factory=list)

    def model(self, rule: str) -> RuleModel:
        """The model of ``rule``: its own; a tile rule's (``<rule>_tile``) falls back to the
        untiled rule's (same script, fewer pixels); a mosaic's to the ``tile_mosaic`` template
        (with the years of a cube rule); else the calibration's default."""
        if rule in self.rules:
            return self.rules[rule]
        if rule.endswith("_tile") and rule[: -len("_tile")] in self.rules:
            return self.rules[rule[: -len("_tile")]]
        if rule.endswith("_mosaic") and "tile_mosaic" in self.rules:
            template = self.rules["tile_mosaic"]
            layers = "years" if rule[: -len("_mosaic")] in YEAR_LAYER_RULES else "1"
            return RuleModel(**{**template.__dict__, "layers": layers})
        layers = "years" if base_rule(rule) in YEAR_LAYER_RULES else "1"
        return RuleModel(**{**self.default.__dict__, "layers": layers})

    def to_dict(self) -> dict[str, Any]:
        return {
            "fitted_from": list(self.fitted_from),
            "mem_safety": self.mem_safety,
            "runtime_safety": self.runtime_safety,
            "mem_floor_mb": self.mem_floor_mb,
            "runtime_floor_min": self.runtime_floor_min,
            "job_process_mb": self.job_process_mb,
            "default": self.default.to_dict(),
            "rules": {name: m.to_dict() for name, m in sorted(self.rules.items())},
        }


def base_rule(rule: str) -> str:
    """A tile or mosaic rule's untiled rule (``terrain_derivatives_tile`` -> ``terrain_derivatives``)."""
    for suffix in ("_tile", "_mosaic"):
        if rule.endswith(suffix) and rule != "tile_mosaic":
            return rule[: -len(suffix)]
    return rule


def load_calibration(path: PathLike | None = None) -> Calibration:
    """The calibration in ``path`` (default: workflow/resources.yaml); a clear error naming
    the file and key when it is malformed, and an empty calibration (every rule gets the
    default) when the default file does not exist."""
    from karstflow.config import load_yaml

    file = Path(path) if path is not None else DEFAULT_CALIBRATION
    if not file.exists():
        if path is None:
            return Calibration(rules={})
        raise FileNotFoundError(f"resource calibration not found: {file}")
    raw = load_yaml(file.read_text()) or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("rules", {}), dict):
        raise ValueError(f"{file}: expected a mapping with a `rules` mapping, found {type(raw).__name__}")
    rules = {name: RuleModel.from_dict(d, f"{file}: rules.{name}") for name, d in (raw.get("rules") or {}).items()}
    for name, m in rules.items():
        if m.layers not in ("1", "years"):
            raise ValueError(f"{file}: rules.{name}.layers: expected '1' or 'years', found {m.layers!r}")
    default = RuleModel.from_dict(raw["default"], f"{file}: default") if raw.get("default") else FALLBACK_RULE
    factors: dict[str, Any] = {}
    for key, kind, minimum in (
        ("mem_safety", float, 1.0),
        ("runtime_safety", float, 1.0),
        ("mem_floor_mb", int, 1),
        ("runtime_floor_min", int, 1),
        ("job_process_mb", int, 0),
    ):
        if key in raw:
            value = raw[key]
            if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{file}: {key}: expected a number >= {minimum}, found {value!r}")
            factors[key] = kind(value)
    return Calibration(rules=rules, default=default, fitted_from=raw.get("fitted_from") or [], **factors)


def write_calibration(calibration: Calibration, path: PathLike, header: str = "") -> None:
    import yaml

    text = yaml.safe_dump(calibration.to_dict(), sort_keys=False, width=100)
    Path(path).write_text(header + text)


# --- the work of a job ---


def work_mpx(pixels: int, layers: int = 1) -> float:
    """Megapixel-layers of a job."""
    if pixels < 0 or layers < 1:
        raise ValueError(f"a job's work needs pixels >= 0 and layers >= 1, found {pixels} px x {layers}")
    return pixels * layers / 1e6


def job_pixels(grid: RegionGrid, tile_px: int | None = None, tile: str | None = None, halo_px: int = 0) -> int:
    """Pixels a job reads: the whole region grid, or the tile's window widened by its halo
    (karstflow.tiling.tile_of / with_halo)."""
    if tile is None:
        return grid.width * grid.height
    if not tile_px:
        raise ValueError(f"tile {tile!r} of an untiled region: a tile job needs the region's tile_px")
    window = with_halo(grid, tile_of(grid, int(tile_px), tile).window, halo_px)
    return window.width * window.height


def holds_one_tile(rule: str) -> bool:
    """A mosaic (``<rule>_mosaic``, not the template) writes tile by tile: it holds one tile."""
    return rule.endswith("_mosaic") and rule != "tile_mosaic"


def memory_pixels(
    rule: str, grid: RegionGrid, tile_px: int | None = None, tile: str | None = None, halo_px: int = 0
) -> int:
    """Pixels a job holds in memory at once. A mosaic (``<rule>_mosaic``) reads the whole
    region but writes it tile by tile (karstflow.tiling.mosaic), so it holds the largest tile;
    its time still follows the region (:func:`job_pixels`). Every other job holds what it reads."""
    if holds_one_tile(rule) and tile_px:
        return min(int(tile_px), grid.height) * min(int(tile_px), grid.width)
    return job_pixels(grid, tile_px, tile, halo_px)


def job_layers(rule: str, years: int) -> int:
    """Layers of a job of ``rule``: the region's years for cube rules, else 1."""
    return years if base_rule(rule) in YEAR_LAYER_RULES else 1


def estimate(
    rule: str,
    pixels: int,
    layers: int = 1,
    threads: int = 1,
    *,
    attempt: int = 1,
    calibration: Calibration | None = None,
    mem_pixels: int | None = None,
) -> tuple[int, int]:
    """(mem_mb, runtime_min) for a job of ``rule`` reading ``pixels`` x ``layers`` and holding
    ``mem_pixels`` x ``layers`` of them in memory at once (default: all it reads;
    :func:`memory_pixels`).

    mem_mb = ceil((max(floor, safety x (base + slope x work + per_thread x (threads - 1)))
                  + job_process_mb) x attempt),
    runtime_min = ceil(max(floor, safety x (base + slope x work) / 60) x attempt).

    The calibration runs used one thread; wall time is not divided by ``threads`` (dask and
    numba speed-ups differ by stage and an underestimate kills the job), memory grows by the
    rule's ``mem_mb_per_thread`` (0 unless calibrated: dask holds one chunk per thread, and
    chunks are bounded by ``chunk_px``, not by the region).
    """
    if attempt < 1 or threads < 1:
        raise ValueError(f"attempt and threads start at 1, found attempt {attempt}, threads {threads}")
    cal = calibration if calibration is not None else load_calibration()
    m = cal.model(rule)
    work = work_mpx(pixels, layers)
    held = work if mem_pixels is None else work_mpx(mem_pixels, layers)
    mem = m.mem_base_mb + m.mem_mb_per_mpx * held + m.mem_mb_per_thread * (threads - 1)
    seconds = m.time_base_s + m.time_s_per_mpx * work
    mem_mb = math.ceil((max(cal.mem_floor_mb, cal.mem_safety * mem) + cal.job_process_mb) * attempt)
    runtime_min = math.ceil(max(cal.runtime_floor_min, cal.runtime_safety * seconds / 60.0) * attempt)
    return mem_mb, runtime_min


# --- fitting ---


def fit_line(work: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(base, slope)`` of ``values = base + slope x work`` (numpy lstsq); one
    distinct work value gives slope 0 and the mean."""
    x = np.asarray(work, dtype=float)
    y = np.asarray(values, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise ValueError(f"fit_line needs as many values as work figures (>= 1), found {x.size} and {y.size}")
    if np.unique(x).size < 2:
        return float(y.mean()), 0.0
    design = np.column_stack([np.ones_like(x), x])
    (base, slope), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(base), float(slope)


def fit_envelope(
    work: Sequence[float],
    values: Sequence[float],
    cover: Sequence[tuple[float, float]] = (),
    slope: float | None = None,
) -> tuple[float, float]:
    """The least-squares line shifted up to cover every point: ``(base, slope)`` with
    ``base + slope x work >= value`` for each point and for each ``(work, value)`` of
    ``cover`` (points that must be covered but do not set the slope: jobs measured under
    other conditions, e.g. while numba compiled its kernels, which adds a few hundred MB
    that do not grow with the region). A negative slope (measurement noise on a rule whose
    need does not grow with the region) becomes 0, the line the largest value; a negative
    base (a steep line through few points) becomes 0, which keeps every point covered. A given
    ``slope`` is kept and only the base fitted (the lowest line of that slope covering all)."""
    if slope is None:
        base, slope = fit_line(work, values)
    else:
        base = 0.0
    x = np.concatenate([np.asarray(work, dtype=float), np.asarray([c[0] for c in cover], dtype=float)])
    y = np.concatenate([np.asarray(values, dtype=float), np.asarray([c[1] for c in cover], dtype=float)])
    if slope < 0:
        return float(y.max()), 0.0
    return max(0.0, base + float(max(0.0, (y - (base + slope * x)).max()))), slope


# --- benchmark tables ---


@dataclass(frozen=True)
class BenchmarkJob:
    """One job's benchmark table: its rule, region, tile (None untiled) and measurements."""

    rule: str
    region: str
    tile: str | None
    path: Path
    wall_s: float
    max_rss_mb: float
    cpu_s: float


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "NA", "-") else math.nan
    except ValueError:
        return math.nan


def read_benchmark(path: PathLike) -> tuple[float, float, float]:
    """(wall s, max_rss MB, cpu s) of a Snakemake benchmark table; the largest of its rows
    (``benchmark: repeat(...)`` writes several). NaN where Snakemake wrote NA (jobs shorter
    than its sampling interval)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "max_rss" not in rows[0] or "s" not in rows[0]:
        raise ValueError(f"{path}: not a Snakemake benchmark table (columns s, max_rss, ...)")
    walls = [_number(r.get("s")) for r in rows]
    rss = [_number(r.get("max_rss")) for r in rows]
    cpu = [_number(r.get("cpu_time")) for r in rows]
    return (
        max(walls, default=math.nan),
        max((v for v in rss if not math.isnan(v)), default=math.nan),
        max((v for v in cpu if not math.isnan(v)), default=math.nan),
    )


def workflow_rule_names(root: PathLike) -> set[str]:
    """Names of the rules declared in ``root``'s workflow/rules/*.smk (``rule``, ``checkpoint``
    and ``use rule ... as``)."""
    names: set[str] = set()
    pattern = re.compile(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:|^\s*use rule \w+ as (\w+)", re.M)
    for smk in sorted((Path(root) / "workflow" / "rules").glob("*.smk")):
        for m in pattern.finditer(smk.read_text()):
            names.add(m[1] or m[2])
    return names


def benchmark_rule(stem: str, rules: Iterable[str], tile: bool = False) -> str | None:
    """The rule of a benchmark file named ``stem`` (``<rule>`` or ``<rule>_<wildcards>``): the
    longest rule name it starts with; a tile's table is named after the untiled rule and
    belongs to ``<rule>_tile``."""
    names = sorted(rules, key=len, reverse=True)
    for name in names:
        if stem == name or stem.startswith(name + "_"):
            if tile:
                return name + "_tile" if not name.endswith("_tile") else name
            return name
    return None


def benchmark_jobs(workdir: PathLike, rules: Iterable[str]) -> list[BenchmarkJob]:
    """Every benchmark table under ``workdir``/logs/benchmarks, with its job's rule."""
    rules = set(rules)
    root = Path(workdir) / "logs" / "benchmarks"
    jobs = []
    for path in sorted(root.glob("*/*.tsv")) + sorted(root.glob("*/tiles/*/*.tsv")):
        region = path.relative_to(root).parts[0]
        tile = path.parent.name if path.parent.parent.name == "tiles" else None
        if tile is not None and not TILE_ID.match(tile):
            continue
        rule = benchmark_rule(path.stem, rules, tile=tile is not None)
        if rule is None:
            raise ValueError(f"{path}: no rule of the workflow is named like this benchmark table")
        wall, rss, cpu = read_benchmark(path)
        jobs.append(BenchmarkJob(rule, region, tile, path, wall, rss, cpu))
    return jobs


@dataclass(frozen=True)
class RegionSize:
    """What a job's work is computed from: the region grid, its tile edge (None untiled) and years."""

    grid: RegionGrid
    tile_px: int | None
    years: int


def run_regions(workdir: PathLike, only: Collection[str] | None = None) -> dict[str, RegionSize]:
    """The regions of a finished run in ``workdir``: grid from results/<region>/grid.json, years
    and tiling from its config/config.yaml (explicit ``tiling``, else the top-level
    ``tiling.auto_above_px`` against the grid, as workflow/rules/functions/tiling.smk); only
    the regions in ``only`` when given."""
    import json

    from karstflow.config import load_yaml

    workdir = Path(workdir)
    config = load_yaml((workdir / "config" / "config.yaml").read_text())
    auto = config.get("tiling") or {}
    sizes = {}
    for rid, region in config["regions"].items():
        if only is not None and rid not in only:
            continue
        grid_file = workdir / "results" / rid / "grid.json"
        if not grid_file.exists():
            continue
        grid = RegionGrid.from_dict(json.loads(grid_file.read_text()))
        if "tiling" in region:
            tile_px = region["tiling"]["tile_px"] if region["tiling"] else None
        elif grid.width * grid.height > int(auto.get("auto_above_px", 100_000_000)):
            tile_px = int(auto.get("tile_px", 4096))
        else:
            tile_px = None
        years = region["years"]["last"] - region["years"]["first"] + 1
        sizes[rid] = RegionSize(grid, tile_px, years)
    return sizes


def job_work(job: BenchmarkJob, size: RegionSize, halo_px: int = 0) -> float:
    """Megapixel-layers a measured job read (its time's work)."""
    pixels = job_pixels(size.grid, size.tile_px, job.tile, halo_px)
    return work_mpx(pixels, job_layers(job.rule, size.years))


def job_memory_work(job: BenchmarkJob, size: RegionSize, halo_px: int = 0) -> float:
    """Megapixel-layers a measured job held at once (its memory's work; :func:`memory_pixels`)."""
    pixels = memory_pixels(job.rule, size.grid, size.tile_px, job.tile, halo_px)
    return work_mpx(pixels, job_layers(job.rule, size.years))


def memory_excess(
    workdir: PathLike, calibration: Calibration, rules: Iterable[str] | None = None
) -> list[tuple[BenchmarkJob, int]]:
    """The jobs of the finished run in ``workdir`` whose measured max_rss exceeds the mem_mb
    :func:`estimate` gives them on the first attempt, with that mem_mb (empty: every job fit).

    Tile jobs are checked without their halo, which gives them the smallest mem_mb the
    workflow could have asked for (the check is stricter than the workflow)."""
    rules = workflow_rule_names(workdir) if rules is None else rules
    sizes = run_regions(workdir)
    excess = []
    for job in benchmark_jobs(workdir, rules):
        if job.region not in sizes or math.isnan(job.max_rss_mb):
            continue
        size = sizes[job.region]
        pixels = job_pixels(size.grid, size.tile_px, job.tile)
        held = memory_pixels(job.rule, size.grid, size.tile_px, job.tile)
        mem_mb, _ = estimate(
            job.rule, pixels, job_layers(job.rule, size.years), calibration=calibration, mem_pixels=held
        )
        if job.max_rss_mb > mem_mb:
            excess.append((job, mem_mb))
    return excess


def slurm_mb(text: str) -> float:
    """A memory figure of sacct ("473704K", "4000M", "4Gn", "1.5G") in MB (Slurm's binary
    units: 1M = 1024K); 0 for an empty field (a job step that recorded none)."""
    import re

    text = text.strip()
    if not text:
        return 0.0
    match = re.fullmatch(r"([\d.]+)([KMGT]?)[nc]?", text)
    if not match:
        raise ValueError(f"not a sacct memory figure: {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "M"
    return value * {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}[unit]
