"""Benchmark: the karst chain of a generated region, untiled and in tiles, locally and
through Slurm (issue 14).

    python benchmarks/tiling/bench_tiling.py --size 4000 --tiles 1 4 16 --executor local slurm \
        --slurm-args="--slurm-init-seconds-before-status-checks 1 --seconds-between-status-checks 1"

(The executor plugin waits 40 s before its first look at a job's state: right for hour-long
jobs, but it would put 40 s on every one of this benchmark's 300 short jobs; the README
table is measured with the status checks above.)

One generated karst region of ``--size`` x ``--size`` px at 30 m (the demo generator,
``--years`` years) is made once; each configuration then runs the chain's stage summaries
(terrain, greening, desertification, CASA NPP, carbon storage, ecosystem services) in its own
copy of the workflow, under ``/usr/bin/time -v``. Per job it reads the benchmark TSV every
rule writes (wall ``s``, ``max_rss``, ``cpu_time``) and Snakemake's log (the job's start and
end as Snakemake saw them): the difference is the job's scheduling overhead (for Slurm:
submission, queueing, the job step's start and the status polling). A job's start-up (the
interpreter and imports, inside ``s``) is the median time of the quickest jobs.

Writes ``<out>/runs/<executor>-<tiles>tiles.json`` (every job of a configuration) and
``<out>/summary.md`` (the tables of the README, from every configuration recorded);
``project.py`` turns them into the projection for the southwest China karst.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COPIED = ("Snakefile", "workflow", "config")
# the chain's stage summaries: everything a karst region computes up to its summaries
TARGETS = [
    "results/demo-karst/terrain/terrain.json",
    "results/demo-karst/greening/greening.json",
    "results/demo-karst/desertification/desertification.json",
    "results/demo-karst/carbon/npp.json",
    "results/demo-karst/carbon/carbon.json",
    "results/demo-karst/services/services.json",
]
# rule name prefix -> stage, for the time per megapixel per stage
STAGES = {
    "inputs_": "inputs",
    "climate_": "climate",
    "terrain_": "terrain",
    "greening_": "greening",
    "desertification_": "desertification",
    "carbon_npp": "npp",
    "carbon_storage": "carbon storage",
    "carbon_summary": "carbon storage",
    "services_": "services",
    "region_": "region",
}
TIME_RE = {
    "wall_s": re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)"),
    "user_s": re.compile(r"User time \(seconds\): ([\d.]+)"),
    "sys_s": re.compile(r"System time \(seconds\): ([\d.]+)"),
    "max_rss_kb": re.compile(r"Maximum resident set size \(kbytes\): (\d+)"),
}


def stage_of(rule: str) -> str:
    base = re.sub(r"_(tile|mosaic)$", "", rule)
    return next((stage for prefix, stage in STAGES.items() if base.startswith(prefix)), "other")


def edit_config(config: dict, size: int, first_year: int, last_year: int, tile_px: int | None) -> None:
    karst = config["regions"]["demo-karst"]
    config["regions"] = {"demo-karst": karst}
    karst["years"] = {"first": first_year, "last": last_year}
    karst["inputs"]["landcover"] = {y: f"resources/demo/demo-karst/landcover_{y}.tif" for y in (first_year, last_year)}
    config.setdefault("demo", {})["sizes"] = {
        "tiny": {"county": 400, "karst": size},
        "county": {"county": 3200, "karst": 1000},
    }
    karst["tiling"] = {"tile_px": tile_px} if tile_px else False
    # Annual climate: the monthly climate cube of 16 Mpx x 48 months is 6.4 GB, and the rule
    # that puts it on the grid holds it in memory (about 600 MB per Mpx-year measured), more
    # than this machine has; it is not tiled yet (the projection names it). CASA then runs
    # on annual steps and RUSLE's R on annual rain (Renard and Freimund 1994).
    karst["inputs"].pop("climate_monthly", None)
    config.setdefault("carbon", {})["time_step"] = "annual"
    services = config.setdefault("services", {}).setdefault("soil_conservation", {})
    services.setdefault("r_factor", {})["method"] = "renard_freimund_1994"


def copy_workflow(dest: Path, size: int, years: tuple[int, int], tile_px: int | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / name)
    path = dest / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    edit_config(config, size, *years, tile_px)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return dest


def timed(cmd: list[str], cwd: Path, log: Path, env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time -v; its figures (wall, user, sys, peak RSS of the
    largest process of the tree)."""
    with log.open("w") as out:
        proc = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd} (exit {proc.returncode}); see {log}")
    return time_figures(log)


def time_figures(log: Path) -> dict[str, float]:
    """The figures /usr/bin/time -v wrote at the end of ``log``."""
    text = log.read_text()
    figures: dict[str, float] = {}
    for key, pattern in TIME_RE.items():
        found = pattern.findall(text)
        if not found:
            raise SystemExit(f"{log}: no /usr/bin/time -v figures ({key}) in it")
        value = found[-1]
        if key == "wall_s":
            parts = [float(p) for p in value.split(":")]
            figures[key] = sum(p * 60**i for i, p in enumerate(reversed(parts)))
        else:
            figures[key] = float(value)
    return figures


def job_spans(workdir: Path) -> list[tuple[str, float]]:
    """(rule, span) of every job of the run, as Snakemake's main log shows it: from the line
    that starts the job ("Job N: ...") to its "Finished jobid: N" line (1 s resolution); of
    the last invocation's log per job when the run took several (resumed after a stop)."""
    stamp = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
    latest: dict[tuple[str, str], float] = {}  # (rule, the job's message) -> span
    for log in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log")):
        now, started = 0.0, {}
        for line in log.read_text().splitlines():
            line = line.strip()
            if m := stamp.match(line):
                now = time.mktime(time.strptime(m[1], "%a %b %d %H:%M:%S %Y"))
            elif m := re.match(r"^Job (\d+): (.*)$", line):
                started[m[1]] = (now, m[2])
            elif m := re.match(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", line):
                if m[1] in started:
                    start, message = started.pop(m[1])
                    latest[(m[2], message)] = now - start
    return [(rule, span) for (rule, _), span in latest.items()]


def _number(row: dict, key: str) -> float:
    return float(row[key]) if row.get(key) not in (None, "NA", "-", "") else math.nan


def read_jobs(workdir: Path) -> list[dict]:
    """Every job of a run: rule, tile, stage and its benchmark figures."""
    jobs = []
    for tsv in sorted((workdir / "logs" / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(workdir / "logs" / "benchmarks")
        parts = rel.parts
        tile = parts[2] if len(parts) > 3 and parts[1] == "tiles" else None
        with tsv.open() as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))

        jobs.append(
            {
                "rule": tsv.stem,
                "tile": tile,
                "stage": stage_of(tsv.stem),
                "s": _number(row, "s"),
                "max_rss_mb": _number(row, "max_rss"),
                "cpu_time_s": _number(row, "cpu_time"),
            }
        )
    return jobs


def tile_px_of(base: Path, tiles: int) -> int | None:
    import rasterio

    with rasterio.open(base / "resources" / "demo" / "demo-karst" / "dem.tif") as dem:
        edge = max(dem.height, dem.width)  # the generator's grid may have a row more
    return None if tiles == 1 else math.ceil(edge / math.isqrt(tiles))


def run_config(args, executor: str, tiles: int, base: Path) -> dict:
    tile_px = tile_px_of(base, tiles)
    name = f"{executor}-{tiles}tiles"
    workdir = args.work / name
    if workdir.exists():
        shutil.rmtree(workdir)
    copy_workflow(workdir, args.size, (args.first_year, args.last_year), tile_px)
    # hard links: the generated inputs are GBs, and no rule writes them
    shutil.copytree(base / "resources", workdir / "resources", copy_function=os.link)
    shutil.copytree(base / ".snakemake" / "metadata", workdir / ".snakemake" / "metadata")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), *TARGETS]
    if executor == "slurm":
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--workflow-profile",
            "workflow/profiles/slurm",
            "--jobs",
            str(args.jobs),
            *shlex.split(args.slurm_args),
            *TARGETS,
        ]
    print(f"{name}: running ...", flush=True)
    t0 = time.time()
    figures = timed(cmd, workdir, args.out / f"{name}.log", env)
    print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    out = record(args, name, executor, tiles, tile_px, workdir, figures)
    if executor == "slurm":
        out["slurm_jobs"] = sacct_jobs(t0)
    return out


def sacct_jobs(since: float) -> list[dict]:
    """Every Slurm job since ``since`` (the run's): its comment (rule and wildcards), state, the
    memory it asked for and the largest MaxRSS of its steps, in MB."""
    from karstflow.resources import slurm_mb

    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since - 1))
    fields = "JobIDRaw,Comment%200,State,ReqMem,MaxRSS"
    text = subprocess.run(
        ["sacct", "-P", "-n", "--starttime", start, f"--format={fields}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    jobs: dict[str, dict] = {}
    for line in text.splitlines():
        job_id, comment, state, req_mem, max_rss = line.split("|")
        main_id = job_id.split(".")[0]
        if "." not in job_id:
            jobs[main_id] = {"job": comment, "state": state, "req_mem_mb": slurm_mb(req_mem), "max_rss_mb": 0.0}
        elif main_id in jobs:
            jobs[main_id]["max_rss_mb"] = max(jobs[main_id]["max_rss_mb"], slurm_mb(max_rss))
    return list(jobs.values())


def collect(args, name: str, base: Path) -> dict:
    """The record of a run made earlier in ``<work>/<name>``, from its benchmark files and
    the /usr/bin/time logs ``<out>/<name>.log``, ``<out>/<name>-2.log``, ...: a run that
    needed several invocations (resumed after a stop) counts the sum of their times."""
    executor, tiles_text = name.rsplit("-", 1)
    tiles = int(tiles_text.removesuffix("tiles"))
    logs = sorted(args.out.glob(f"{name}.log")) + sorted(args.out.glob(f"{name}-[0-9]*.log"))
    if not logs:
        raise SystemExit(f"--collect {name}: no log {args.out / (name + '.log')}")
    parts = [time_figures(log) for log in logs]
    figures = {key: sum(p[key] for p in parts) for key in ("wall_s", "user_s", "sys_s")}
    figures["max_rss_kb"] = max(p["max_rss_kb"] for p in parts)
    workdir = args.work / name
    out = record(args, name, executor, tiles, tile_px_of(base, tiles), workdir, figures)
    out["invocations"] = len(logs)
    # a run stopped before its end (its /usr/bin/time figures then cover the part it ran)
    out["complete"] = "steps (100%) done" in logs[-1].read_text()
    if executor == "slurm":
        # the run started when its first Snakemake log was opened (the log's name is the time)
        first = min((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
        started = time.mktime(time.strptime(first.name.split(".")[0], "%Y-%m-%dT%H%M%S"))
        out["slurm_jobs"] = sacct_jobs(started)
    return out


def record(args, name: str, executor: str, tiles: int, tile_px: int | None, workdir: Path, figures: dict) -> dict:
    jobs = read_jobs(workdir)
    spans = job_spans(workdir)
    return {
        "name": name,
        "executor": executor,
        "tiles": tiles,
        "tile_px": tile_px,
        "size_px": args.size,
        "years": args.last_year - args.first_year + 1,
        "cores": args.cores,
        **figures,
        "jobs": jobs,
        # the jobs' spans as Snakemake saw them minus the scripts' own time, per job
        # (submission, queueing and status polling through Slurm; starting the job locally)
        "overhead_per_job_s": (sum(span for _, span in spans) - sum(j["s"] for j in jobs)) / max(1, len(jobs)),
        "spans": spans,
    }


def generate(args) -> Path:
    """The generated region, once (not part of any timing)."""
    base = args.work / "generated"
    if (base / "resources" / "demo" / "demo-karst" / "dem.tif").exists():
        return base
    copy_workflow(base, args.size, (args.first_year, args.last_year), None)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "resources/demo/demo-karst/dem.tif"]
    print("generating the region ...", flush=True)
    timed(cmd, base, args.out / "generate.log", env)
    return base


def median_of_smallest(values, n: int = 5) -> float:
    """The median of the ``n`` smallest values: what the jobs that do next to nothing cost."""
    smallest = sorted(values)[:n]
    return smallest[len(smallest) // 2] if smallest else math.nan


def startup_s(jobs: list[dict]) -> float:
    """What a job costs before it computes (the interpreter, the imports, reading its
    inputs' headers): the median time of the five quickest jobs."""
    return median_of_smallest(j["s"] for j in jobs)


def summarise(runs: list[dict]) -> str:
    lines = [
        "| run | tiles | wall (s) | CPU, jobs (s) | CPU, run (s) | jobs | peak job RSS (MB)"
        " | scheduling per job (s) | start-up per job (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        jobs = [j for j in r["jobs"] if j["rule"] != "demo_karst"]
        cpu = sum(j["cpu_time_s"] for j in jobs if not math.isnan(j["cpu_time_s"]))
        peak = max(j["max_rss_mb"] for j in jobs if not math.isnan(j["max_rss_mb"]))
        lines.append(
            f"| {r['name']}{'' if r.get('complete', True) else ' (stopped, part)'} | {r['tiles']} | {r['wall_s']:.0f}"
            f" | {cpu:.0f} | {r['user_s'] + r['sys_s']:.0f}"
            f" | {len(jobs)} | {peak:.0f} |"
            f" {r['overhead_per_job_s']:.1f} | {startup_s(jobs):.1f} |"
        )
    for r in runs:
        if r.get("slurm_jobs"):
            over = [j for j in r["slurm_jobs"] if j["max_rss_mb"] > j["req_mem_mb"]]
            failed = [j for j in r["slurm_jobs"] if j["state"] != "COMPLETED"]
            lines += [
                "",
                f"{r['name']}: {len(r['slurm_jobs'])} Slurm jobs, {len(failed)} not COMPLETED; "
                f"{len(over)} used more memory (sacct MaxRSS) than they asked for (ReqMem)"
                + (
                    ": " + ", ".join(f"{j['job']} {j['max_rss_mb']:.0f} > {j['req_mem_mb']:.0f} MB" for j in over)
                    if over
                    else "."
                ),
            ]
    mpx = runs[0]["size_px"] ** 2 / 1e6
    stages = sorted({j["stage"] for r in runs for j in r["jobs"] if j["rule"] != "demo_karst"})
    lines += ["", "Job seconds per megapixel, by stage (sum over the stage's jobs / region Mpx):", ""]
    lines.append("| stage | " + " | ".join(r["name"] for r in runs) + " |")
    lines.append("|---|" + "---:|" * len(runs))
    for stage in stages:
        cells = [sum(j["s"] for j in r["jobs"] if j["stage"] == stage) / mpx for r in runs]
        lines.append(f"| {stage} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    lines += ["", "Peak memory per job (MB), by stage (largest job):", ""]
    lines.append("| stage | " + " | ".join(r["name"] for r in runs) + " |")
    lines.append("|---|" + "---:|" * len(runs))
    for stage in stages:
        cells = [max((j["max_rss_mb"] for j in r["jobs"] if j["stage"] == stage), default=math.nan) for r in runs]
        lines.append(f"| {stage} | " + " | ".join(f"{c:.0f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def read_runs(records: Path) -> list[dict]:
    """The configurations recorded in ``records`` (``<out>/runs``): local before Slurm, by tiles."""
    runs = [json.loads(p.read_text()) for p in sorted(records.glob("*.json"))]
    if not runs:
        raise SystemExit(f"{records}: no run recorded (run bench_tiling.py first)")
    return sorted(runs, key=lambda r: (r["executor"] != "local", r["executor"], r["tiles"]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=4000, help="region edge in px (default 4000)")
    parser.add_argument("--first-year", type=int, default=2016)
    parser.add_argument("--last-year", type=int, default=2023)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 4, 16], help="tile counts (squares)")
    parser.add_argument("--executor", nargs="+", default=["local"], choices=["local", "slurm"])
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="Slurm jobs at once")
    parser.add_argument(
        "--slurm-args",
        default="",
        help="extra snakemake options for Slurm runs, one string: --slurm-args='--seconds-between-status-checks 1'",
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/karstflow-bench-tiling"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "tiling" / "results")
    parser.add_argument(
        "--collect",
        nargs="+",
        metavar="NAME",
        help="do not run: record the runs NAME (e.g. local-1tiles) already made in --work from their logs in --out",
    )
    parser.add_argument("--summary-only", action="store_true", help="run nothing: rewrite summary.md")
    args = parser.parse_args(argv)
    for tiles in args.tiles:
        if math.isqrt(tiles) ** 2 != tiles:
            parser.error(f"--tiles {tiles}: a tile count must be a square (1, 4, 16, ...)")
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    base = generate(args)
    # one record per configuration as soon as it has run, so configurations can be run (and
    # rerun) one at a time; summary.md holds every record there is
    records = args.out / "runs"
    records.mkdir(exist_ok=True)
    if args.summary_only:
        done = []
    elif args.collect:
        done = [collect(args, name, base) for name in args.collect]
    else:
        done = [run_config(args, ex, tiles, base) for ex in args.executor for tiles in args.tiles]
    for run in done:
        (records / f"{run['name']}.json").write_text(json.dumps(run, indent=1))
    runs = [r for r in read_runs(records) if r["size_px"] == args.size]
    (args.out / "summary.md").write_text(summarise(runs))
    print(summarise(runs))


if __name__ == "__main__":
    main()
