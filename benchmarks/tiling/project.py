"""Projection: wall time of the karst chain for the whole southwest China karst, from the
measured cost per megapixel of each rule (the runs benchmarks/tiling/bench_tiling.py recorded).

    python benchmarks/tiling/project.py benchmarks/tiling/results --out benchmarks/tiling/results/projection.md

The model (every assumption is a parameter below and is printed with the table):

- Region: 540,000 km2 of the eight provinces' karst: 600 Mpx at 30 m, 5,400 Mpx at 10 m,
  24 years (2000-2023).
- Cost per megapixel: each rule's job seconds per region megapixel, from the local tiled
  run whose tiles are nearest in size to the projected ones (the tiled rules' jobs are then
  tile-sized, as on a cluster). Rules
  whose work grows with the years (the annual cubes: inputs, climate, greening,
  desertification, CASA) scale by years / benchmark years; the others (terrain, the carbon
  storage and service maps of the first and last land-cover year) do not.
- A tiled rule runs its jobs in waves of (nodes x job slots per node); a slot is
  ``threads`` cores (as benchmarked) and as much memory as the rule's largest tile job
  measured, scaled to the projected tile size; a job costs its tile's share of the rule's
  time plus the measured overhead per job.
- A rule that is not tiled (input harmonisation, flow routing, mosaics, summaries) is one
  job on one node; its time grows linearly with the pixels, and so does its memory, except a
  mosaic's, which writes one tile at a time and holds one tile. A region rule whose
  projected memory exceeds a node's is marked: it has to be split (per hydrological unit for
  flow routing) before such a region can run.
- The rules run one after another (no overlap between stages): an upper bound.
- Scheduling per job is what the Slurm runs measured (submission, the job step's start,
  Snakemake in the allocation, and the executor plugin's status polling), on jobs of
  seconds. The plugin looks again 10 s later each time no job has finished (up to 180 s),
  so for tile jobs of minutes the wait after a wave can be a few times larger: at most
  180 s per wave, an hour or two over the chain's waves at 30 m.
"""

from __future__ import annotations

import argparse
import math
import re
from collections import defaultdict
from pathlib import Path

from bench_tiling import median_of_smallest, read_runs, startup_s  # the script's folder is on sys.path

from karstflow.resources import holds_one_tile

YEAR_SCALED = ("inputs_cube", "climate_", "greening_", "desertification_grades", "carbon_npp")
REGIONS = {"30 m": 600.0, "10 m": 5400.0}  # Mpx
YEARS = 24
NODES = (1, 10, 100)
CORES_PER_NODE = 32
NODE_MEMORY_MB = 128_000
TILE_PX = 4096


def base_rule(rule: str) -> str:
    """The rule of a benchmark file's stem: without the tile suffix and the year
    (services_water_yield_2020 -> services_water_yield; its years are its jobs)."""
    return re.sub(r"_(19|20)\d\d(?=_mosaic$|$)", "", re.sub(r"_tile$", "", rule))


def costs(run: dict) -> tuple[dict[str, dict], float, float]:
    """Per rule: seconds and memory per megapixel beyond a job's fixed cost, jobs per tile,
    tiled or not; and that fixed cost: the start-up time (the quickest jobs' median) and the
    base memory (the smallest jobs' median RSS) every job pays whatever its size."""
    mpx = run["size_px"] ** 2 / 1e6
    tile_mpx = (run["tile_px"] or run["size_px"]) ** 2 / 1e6
    n_tiles = run["tiles"]
    jobs = [j for j in run["jobs"] if j["rule"] != "demo_karst"]
    startup = startup_s(jobs)
    base_mb = median_of_smallest(j["max_rss_mb"] for j in jobs)
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for job in jobs:
        by_rule[base_rule(job["rule"])].append(job)
    out = {}
    for rule, rule_jobs in by_rule.items():
        tiled = any(j["tile"] for j in rule_jobs)
        holds_a_tile = tiled or holds_one_tile(rule)
        seconds = sum(max(0.0, j["s"] - startup) for j in rule_jobs)
        peak = max(max(0.0, j["max_rss_mb"] - base_mb) for j in rule_jobs)
        out[rule] = {
            "tiled": tiled,
            "s_per_mpx": seconds / mpx,
            "mb_per_mpx": peak / (tile_mpx if holds_a_tile else mpx),
            "holds_a_tile": holds_a_tile,
            "jobs_per_tile": len(rule_jobs) / n_tiles if tiled else len(rule_jobs),
            "year_scaled": rule.startswith(YEAR_SCALED),
        }
    return out, startup, base_mb


def project(
    rule_costs: dict[str, dict],
    per_job_s: float,
    base_mb: float,
    threads: int,
    bench_years: int,
    region_mpx: float,
    nodes: int,
) -> tuple[float, list[str]]:
    """Projected wall seconds of the chain, and the region rules that would not fit a node.

    ``per_job_s`` is what a job costs beyond its work (start-up plus scheduling), and
    ``base_mb`` the memory every job needs whatever its size.
    """
    tile_mpx = TILE_PX**2 / 1e6
    n_tiles = math.ceil(region_mpx / tile_mpx)
    wall, too_big = 0.0, []
    for rule, c in rule_costs.items():
        scale = YEARS / bench_years if c["year_scaled"] else 1.0
        if c["tiled"]:
            job_mb = base_mb + c["mb_per_mpx"] * tile_mpx * scale
            slots = max(1, min(CORES_PER_NODE // threads, int(NODE_MEMORY_MB // job_mb)))
            n_jobs = math.ceil(n_tiles * c["jobs_per_tile"])
            job_s = c["s_per_mpx"] * tile_mpx / c["jobs_per_tile"] * scale + per_job_s
            wall += math.ceil(n_jobs / (nodes * slots)) * job_s
        else:
            wall += c["s_per_mpx"] * region_mpx * scale + per_job_s * c["jobs_per_tile"]
            held_mpx = min(tile_mpx, region_mpx) if c.get("holds_a_tile") else region_mpx
            if base_mb + c["mb_per_mpx"] * held_mpx * scale > NODE_MEMORY_MB:
                too_big.append(rule)
    return wall, too_big


def table(runs: list[dict], source: str | None = None) -> str:
    local = [r for r in runs if r["executor"] == "local"] or runs
    if source is not None:
        named = [r for r in runs if r["name"] == source]
        if not named:
            raise SystemExit(f"--from {source}: no such run (recorded: {', '.join(r['name'] for r in runs)})")
        run = named[0]
    else:
        # the tiled run whose tiles are nearest the projected tiles' size (the per-tile costs
        # and memory are measured closest to where they are used)
        tiled = [r for r in local if r["tiles"] > 1] or local
        run = min(tiled, key=lambda r: abs(math.log((r["tile_px"] or r["size_px"]) / TILE_PX)))
    rule_costs, startup, base_mb = costs(run)
    slurm = [r for r in runs if r["executor"] == "slurm"]
    # scheduling per job as measured through Slurm (it is what a cluster adds), else locally
    scheduling = max((r["overhead_per_job_s"] for r in slurm), default=run["overhead_per_job_s"])
    per_job_s = startup + max(0.0, scheduling)
    threads = run.get("threads", 2)
    lines = [
        f"Projection from {run['name']} ({run['size_px']} x {run['size_px']} px, {run['years']} years, "
        f"{run['tiles']} tiles): {per_job_s:.1f} s per job beyond its work ({startup:.1f} s start-up, "
        f"{scheduling:.1f} s scheduling{' through Slurm' if slurm else ''}), {base_mb:.0f} MB base memory; "
        f"tiles of {TILE_PX} px, {CORES_PER_NODE} cores and {NODE_MEMORY_MB // 1000} GB per node, "
        f"jobs of {threads} threads, {YEARS} years:",
        "",
        "| resolution | pixels | " + " | ".join(f"{n} node{'s' if n > 1 else ''}" for n in NODES) + " |",
        "|---|---:|" + "---:|" * len(NODES),
    ]
    notes: dict[str, set[str]] = defaultdict(set)
    for label, mpx in REGIONS.items():
        cells = []
        for nodes in NODES:
            wall, too_big = project(rule_costs, per_job_s, base_mb, threads, run["years"], mpx, nodes)
            notes[label].update(too_big)
            cells.append(f"{wall / 3600:.1f} h")
        lines.append(f"| {label} | {mpx:,.0f} Mpx | " + " | ".join(cells) + " |")
    serial = {
        rule: c["s_per_mpx"] * (YEARS / run["years"] if c["year_scaled"] else 1.0)
        for rule, c in rule_costs.items()
        if not c["tiled"]
    }
    top = sorted(serial.items(), key=lambda kv: -kv[1])[:5]
    lines += [
        "",
        f"Untiled rules: {sum(serial.values()):.2f} s per Mpx in all, which no number of nodes shortens; "
        "the largest: " + ", ".join(f"{rule} {v:.2f}" for rule, v in top) + ".",
    ]
    for label, rules in notes.items():
        if rules:
            names = ", ".join(sorted(rules))
            lines += ["", f"Region rules whose projected memory at {label} exceeds one node: {names}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="bench_tiling.py's --out folder (its runs/*.json)")
    parser.add_argument("--out", type=Path, help="write the table here too (markdown)")
    parser.add_argument("--from", dest="source", metavar="NAME", help="project from this run (default: see above)")
    args = parser.parse_args(argv)
    text = table(read_runs(args.results / "runs"), args.source)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
