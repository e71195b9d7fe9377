"""Fit each rule's memory and runtime to the work of its jobs and write workflow/resources.yaml.

Usage:
    python benchmarks/calibrate_resources.py RUN [RUN ...] [--cover RUN ...] [--out workflow/resources.yaml]
        [--mem-safety 1.2] [--runtime-safety 2.0] [--only GLOB ...]

RUN is a run directory, optionally with the regions to read: ``DIR:region,region``.
``--only '*_mosaic'`` refits only the rules matching the patterns, from these runs, and keeps
every other rule (and the default) as ``--out`` has it: for a change to some rules' code, without
rerunning every calibration run.

Each run is a finished workflow run (a copy of the workflow with its config/config.yaml,
results/<region>/grid.json and logs/benchmarks/...), best run with ``--cores 1`` so every job
ran on one thread (what the fit assumes). Runs at two or more region sizes give each rule a
slope; a rule measured at one size only gets slope 0 and its largest need as base.

For every rule: work = pixels of the job's window (tile windows without their halo) x layers
(years for karstflow.resources.YEAR_LAYER_RULES), in megapixel-layers; memory is the benchmark's
max_rss (MB) against the pixels the job holds at once (a mosaic: one tile,
karstflow.resources.memory_pixels), time its wall seconds ``s`` against the work; both are
fitted with karstflow.resources.fit_envelope (least squares shifted up to cover every job).
``--cover`` runs are covered but do not set the slopes: runs made under other conditions, e.g.
the test suite's demo run, whose jobs compiled numba kernels (a few hundred MB more, the same at
every size). The default for rules missing from the calibration is the largest base and slope
over the calibrated rules. A rule whose fitted memory rises by no more than
karstflow.resources.BASELINE_SPREAD_MB over its jobs' range of work has no measured slope: its
slope is lost in the spread of the interpreter's baseline between runs. It gets
PRIOR_MEM_MB_PER_MPX (``mem_slope_from: prior``) when the range is too short for that prior to
have shown, else the largest slope the spread can hide, spread / range (``mem_slope_from:
bound``); wall time likewise (BASELINE_SPREAD_S, PRIOR_TIME_S_PER_MPX, ``time_slope_from``).
Wall times on a shared machine are noisy (other jobs compete for the cores): the runtime safety
factor covers that.

Prints one row per rule (jobs, largest work, largest max_rss, fitted line, the first-attempt
mem_mb at the largest work, largest wall and CPU seconds) and the rules cheap enough to run as
localrules (by memory, CPU time and a memory that does not grow with the region).
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from karstflow.resources import (
    BASELINE_SPREAD_MB,
    BASELINE_SPREAD_S,
    JOB_PROCESS_MB,
    MEM_SAFETY,
    PRIOR_MEM_MB_PER_MPX,
    PRIOR_TIME_S_PER_MPX,
    RUNTIME_SAFETY,
    Calibration,
    RuleModel,
    benchmark_jobs,
    estimate,
    fit_envelope,
    fit_line,
    job_layers,
    job_memory_work,
    job_work,
    load_calibration,
    run_regions,
    workflow_rule_names,
    write_calibration,
)

ROOT = Path(__file__).resolve().parents[1]
# A rule is a localrules candidate when even the largest calibration job of it stayed under
# these (the submitting host runs it in less time than a cluster job's queueing takes).
# CPU seconds, not wall: on a shared machine wall time measures the other jobs as much.
LOCAL_MAX_MEM_MB = 400
LOCAL_MAX_CPU_S = 15
LOCAL_MAX_MEM_SLOPE = 20.0  # MB per megapixel(-layer): its memory does not grow with the region
LOCAL_MAX_CPU_SLOPE = 1.0  # CPU s per megapixel(-layer)
LOCAL_MIN_WORK_MPX = 0.5  # measured on at least this much work

HEADER = """\
# Memory and runtime of each rule as a function of its work (karstflow.resources):
#   mem_mb  = mem_base_mb + mem_mb_per_mpx x work (+ mem_mb_per_thread x (threads - 1))
#   seconds = time_base_s + time_s_per_mpx x work
# work = megapixels of the job's window (tile jobs: the tile with its halo) x layers
# (layers: years = the region's years, for cubes); a mosaic's memory counts one tile
# (karstflow.resources.memory_pixels). Fitted as the least-squares line shifted up
# to cover every measured job; the workflow multiplies by mem_safety / runtime_safety, applies
# the floors and scales by the attempt. Written by benchmarks/calibrate_resources.py from the
# runs in fitted_from: regenerate rather than edit.
"""


# memory's work (Mpx-layers held), max_rss (MB), time's work (Mpx-layers read), wall (s), cpu (s);
# the two works differ for a mosaic only (karstflow.resources.memory_pixels)
Point = tuple[float, float, float, float, float]
RunSpec = tuple[Path, list[str] | None]


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_run(spec: str) -> RunSpec:
    """``DIR`` or ``DIR:region,region``."""
    path, _, regions = spec.partition(":")
    return Path(path), (regions.split(",") if regions else None)


def run_points(run: Path, only: list[str] | None = None) -> tuple[dict[str, list[Point]], dict[str, Any]]:
    """The measured points of each rule in one finished run, and the run's description."""
    sizes = run_regions(run, only)
    if not sizes:
        raise SystemExit(f"{run}: no results/<region>/grid.json for {only or 'any region'}: not a finished run")
    # a run whose copy has no workflow/rules (a Snakefile pointing elsewhere) is named by ours
    rules = workflow_rule_names(run) or workflow_rule_names(ROOT)
    jobs = [job for job in benchmark_jobs(run, rules) if job.region in sizes]
    if not jobs:
        raise SystemExit(f"{run}: no benchmark tables under logs/benchmarks")
    points: dict[str, list[Point]] = defaultdict(list)
    for job in jobs:
        if not math.isnan(job.max_rss_mb):
            size = sizes[job.region]
            points[job.rule].append(
                (job_memory_work(job, size), job.max_rss_mb, job_work(job, size), job.wall_s, job.cpu_s)
            )
    return points, {
        "run": str(run),
        "jobs": len(jobs),
        "regions": {
            rid: {"height": s.grid.height, "width": s.grid.width, "years": s.years, "tile_px": s.tile_px}
            for rid, s in sizes.items()
        },
    }


def calibrate(
    runs: list[Path | RunSpec],
    mem_safety: float = MEM_SAFETY,
    runtime_safety: float = RUNTIME_SAFETY,
    cover: list[Path | RunSpec] | None = None,
    job_process_mb: int = JOB_PROCESS_MB,
) -> tuple[Calibration, dict[str, list[Point]]]:
    """The calibration fitted on ``runs``, covering the jobs of ``cover`` too, and the points of
    each rule (fitted and covered)."""
    fitted: dict[str, list[Point]] = defaultdict(list)
    covered: dict[str, list[Point]] = defaultdict(list)
    fitted_from = []
    for role, group, target in (("fit", runs, fitted), ("cover", cover or [], covered)):
        for item in group:
            run, only = item if isinstance(item, tuple) else (Path(item), None)
            run_pts, described = run_points(run, only)
            for rule, pts in run_pts.items():
                target[rule].extend(pts)
            fitted_from.append(
                {**described, "role": role, "calibrated_at_commit": git_commit(), "date": dt.date.today().isoformat()}
            )
    models = {}
    for rule in sorted(set(fitted) | set(covered)):
        # a rule measured only in cover runs is fitted on them
        pts, extra = (fitted[rule], covered.get(rule, [])) if fitted.get(rule) else (covered[rule], [])
        held, work = [p[0] for p in pts], [p[2] for p in pts]
        mem_base, mem_slope, slope_from = _slope(
            held, [p[1] for p in pts], [(p[0], p[1]) for p in extra], BASELINE_SPREAD_MB, PRIOR_MEM_MB_PER_MPX
        )
        time_base, time_slope, time_from = _slope(
            work, [p[3] for p in pts], [(p[2], p[3]) for p in extra], BASELINE_SPREAD_S, PRIOR_TIME_S_PER_MPX
        )
        models[rule] = RuleModel(
            mem_base_mb=mem_base,
            mem_mb_per_mpx=mem_slope,
            time_base_s=time_base,
            time_s_per_mpx=time_slope,
            layers="years" if job_layers(rule, 2) == 2 else "1",
            jobs=len(pts) + len(extra),
            max_work_mpx=max(work + [p[2] for p in extra]),
            mem_slope_from=slope_from,
            time_slope_from=time_from,
        )
    default = RuleModel(
        mem_base_mb=max(m.mem_base_mb for m in models.values()),
        mem_mb_per_mpx=max(m.mem_mb_per_mpx for m in models.values()),
        time_base_s=max(m.time_base_s for m in models.values()),
        time_s_per_mpx=max(m.time_s_per_mpx for m in models.values()),
    )
    cal = Calibration(
        rules=models,
        default=default,
        mem_safety=mem_safety,
        runtime_safety=runtime_safety,
        job_process_mb=job_process_mb,
        fitted_from=fitted_from,
    )
    points = {rule: fitted.get(rule, []) + covered.get(rule, []) for rule in models}
    return cal, points


def _slope(
    work: list[float], values: list[float], extra: list[tuple[float, float]], spread: float, prior: float
) -> tuple[float, float, str]:
    """(base, slope, where the slope comes from) of one rule's memory or time.

    "fit": the fitted rise over the jobs' range of work exceeds ``spread`` (the noise of a
    job's baseline between runs), so the data show the slope. Otherwise the data cannot tell
    a slope below spread / range from none: "prior" when the range is too short for the prior
    slope to have shown either (the prior is then as good a guess as any), "bound" when it
    is long enough that the prior would have shown: the slope is then at most spread / range,
    and that bound is used (a rule measured flat from 0 to 64 Mpx, such as a blockwise
    copy, does not get the prior's 100 MB per Mpx).
    """
    base, slope = fit_envelope(work, values, extra)
    span = max(work) - min(work)
    if slope * span > spread:
        return base, slope, "fit"
    if prior * span <= spread:
        return (*fit_envelope(work, values, extra, slope=prior), "prior")
    bound = spread / span
    return (*fit_envelope(work, values, extra, slope=bound), "bound")


def local_candidates(points: dict[str, list[Point]], cal: Calibration) -> list[str]:
    """Rules cheap enough for the submitting host at any region size: every measured job small
    (LOCAL_MAX_MEM_MB, LOCAL_MAX_CPU_S), measured up to LOCAL_MIN_WORK_MPX, and neither memory
    nor CPU time growing with the work (fitted slopes, not the floor)."""
    chosen = []
    for rule, pts in points.items():
        cpu = [(p[2], p[4]) for p in pts if not math.isnan(p[4])]
        if not cpu or max(p[1] for p in pts) > LOCAL_MAX_MEM_MB or max(c[1] for c in cpu) > LOCAL_MAX_CPU_S:
            continue
        m = cal.rules[rule]
        if m.mem_slope_from != "fit" or m.mem_mb_per_mpx > LOCAL_MAX_MEM_SLOPE or m.max_work_mpx < LOCAL_MIN_WORK_MPX:
            continue
        if fit_line([c[0] for c in cpu], [c[1] for c in cpu])[1] > LOCAL_MAX_CPU_SLOPE:
            continue
        chosen.append(rule)
    return sorted(chosen)


def refit_only(cal: Calibration, base: Calibration, patterns: list[str]) -> Calibration:
    """``base`` with the rules matching ``patterns`` (fnmatch) taken from ``cal``; the runs of
    ``cal`` are added to ``fitted_from`` with the patterns they were used for."""
    chosen = {rule: m for rule, m in cal.rules.items() if any(fnmatch.fnmatch(rule, p) for p in patterns)}
    if not chosen:
        raise SystemExit(f"--only {' '.join(patterns)}: no rule of these runs matches")
    return Calibration(
        rules={**base.rules, **chosen},
        default=base.default,
        mem_safety=cal.mem_safety,
        runtime_safety=cal.runtime_safety,
        job_process_mb=base.job_process_mb,
        fitted_from=[*base.fitted_from, *({**run, "rules": list(patterns)} for run in cal.fitted_from)],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("runs", nargs="+", type=parse_run, help="finished workflow runs: DIR or DIR:region,region")
    parser.add_argument("--cover", nargs="*", type=parse_run, default=[], help="runs to cover, not to fit slopes on")
    parser.add_argument("--out", type=Path, default=ROOT / "workflow" / "resources.yaml")
    parser.add_argument("--mem-safety", type=float, default=MEM_SAFETY)
    parser.add_argument("--runtime-safety", type=float, default=RUNTIME_SAFETY)
    parser.add_argument(
        "--job-process-mb",
        type=int,
        default=JOB_PROCESS_MB,
        help="memory of Snakemake's process in a cluster job, beyond the script (sacct MaxRSS - max_rss)",
    )
    parser.add_argument("--only", nargs="+", metavar="GLOB", help="refit only these rules; keep the others of --out")
    args = parser.parse_args(argv)
    cal, points = calibrate(args.runs, args.mem_safety, args.runtime_safety, args.cover, args.job_process_mb)
    if args.only:
        cal = refit_only(cal, load_calibration(args.out), args.only)
        points = {rule: pts for rule, pts in points.items() if any(fnmatch.fnmatch(rule, p) for p in args.only)}
    print(
        f"{'rule':34s} {'jobs':>4s} {'max Mpx':>8s} {'max rss':>8s} {'base MB':>8s} {'MB/Mpx':>8s} "
        f"{'mem_mb':>7s} {'max s':>7s} {'base s':>7s} {'s/Mpx':>8s} {'max cpu':>7s}"
    )
    for rule, pts in sorted(points.items()):
        m = cal.rules[rule]
        held = round(max(p[0] for p in pts) * 1e6)
        mem_mb, _ = estimate(rule, round(m.max_work_mpx * 1e6), 1, calibration=cal, mem_pixels=held)
        print(
            f"{rule:34s} {m.jobs:4d} {m.max_work_mpx:8.3f} {max(p[1] for p in pts):8.1f} {m.mem_base_mb:8.1f} "
            f"{m.mem_mb_per_mpx:8.2f} {mem_mb:7d} {max(p[3] for p in pts):7.1f} {m.time_base_s:7.1f} "
            f"{m.time_s_per_mpx:8.2f} {max(p[4] for p in pts):7.1f}"
        )
    print("localrules candidates:", ", ".join(local_candidates(points, cal)))
    write_calibration(cal, args.out, HEADER)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
