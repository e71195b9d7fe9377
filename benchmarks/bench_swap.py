"""Swap-plan solvers side by side: scipy.optimize.milp (HiGHS, what karstflow.swap uses),
PuLP with CBC (the usual open-source peer) and karstflow's greedy fallback.

    .venv/bin/python benchmarks/bench_swap.py [--sizes 100 500 2000 5000 20000] [--cost area]
        [--share 0.5] [--repeat 3] [--time-limit 120] [--seed 1] [--mip-rel-gap 1e-6]

Instances look like county forest patches: areas lognormal (median 1.5 ha, 0.05-60 ha),
grades 2-13 from the nearest farmland, capacity (16 - grade) x area x 1.5 t; cost per the
chosen kind (area; carbon: 22/55/95 Mg C/ha x area by forest type; forest_type: weights
1/10/100 x area). The demand is ``share`` of the total capacity. Reports seconds per
solver (best of ``repeat``), the speed ratio CBC / HiGHS, whether both reach the same
optimum (to the relative gap), and the greedy plan's gap to the HiGHS plan. Writes
benchmarks/results/swap_{cost}.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np

from karstflow.capacity import grain_capacity_kg
from karstflow.swap import _milp, greedy_cover


def instance(n: int, cost_kind: str, share: float, rng: np.random.Generator):
    area = np.clip(rng.lognormal(np.log(1.5), 1.1, n), 0.05, 60.0)
    grade = rng.integers(2, 14, n).astype(float)
    ftype = rng.integers(0, 3, n)  # 0 sparse, 1 other, 2 forested
    capacity = np.asarray(grain_capacity_kg(grade, area))
    if cost_kind == "area":
        cost = area
    elif cost_kind == "carbon":
        cost = np.array([22.0, 55.0, 95.0])[ftype] * rng.lognormal(0, 0.2, n) * area
    else:
        cost = np.array([1.0, 10.0, 100.0])[ftype] * area
    return capacity, cost, share * capacity.sum()


def solve_cbc(capacity, cost, required, time_limit, gap):
    import pulp

    prob = pulp.LpProblem("swap", pulp.LpMinimize)
    x = [pulp.LpVariable(f"x{i}", cat="Binary") for i in range(len(capacity))]
    prob += pulp.lpDot(cost.tolist(), x)
    prob += pulp.lpDot((capacity / required).tolist(), x) >= 1.0
    prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap))
    status = pulp.LpStatus[prob.status]
    sel = np.array([v.value() > 0.5 for v in x])
    return sel, status


def best_of(repeat, fn):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000, 5000, 20000])
    ap.add_argument("--cost", choices=["area", "carbon", "forest_type"], default="area")
    ap.add_argument("--share", type=float, default=0.5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--mip-rel-gap", type=float, default=1e-6, help="HiGHS and CBC relative gap (default 1e-6, as the config)"
    )
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    print(f"cost {args.cost}, demand {args.share:.0%} of all capacity, best of {args.repeat}")
    print(f"{'n':>7} {'HiGHS s':>9} {'CBC s':>9} {'CBC/HiGHS':>10} {'same opt':>9} {'greedy s':>9} {'greedy gap':>11}")
    for n in args.sizes:
        capacity, cost, required = instance(n, args.cost, args.share, rng)
        t_h, (x_h, status_h, _, _) = best_of(
            args.repeat, functools.partial(_milp, capacity, cost, required, args.time_limit, args.mip_rel_gap)
        )
        t_c, (x_c, status_c) = best_of(
            args.repeat, functools.partial(solve_cbc, capacity, cost, required, args.time_limit, args.mip_rel_gap)
        )
        t_g, x_g = best_of(args.repeat, functools.partial(greedy_cover, capacity, cost, required))
        c_h, c_c, c_g = (float(cost[x].sum()) for x in (x_h, x_c, x_g))
        same = abs(c_h - c_c) <= 1e-6 * max(c_h, 1e-12)
        gap = c_g / c_h - 1
        rows.append({"n": n, "highs_s": t_h, "highs_status": status_h, "cbc_s": t_c, "cbc_status": status_c,
                     "ratio_cbc_over_highs": t_c / t_h, "highs_cost": c_h, "cbc_cost": c_c, "same_optimum": same,
                     "greedy_s": t_g, "greedy_cost": c_g, "greedy_gap": gap})
        print(f"{n:>7} {t_h:>9.3f} {t_c:>9.3f} {t_c / t_h:>10.1f} {str(same):>9} {t_g:>9.4f} {gap:>11.4%}"
              + ("" if status_h == "optimal" else f"  HiGHS: {status_h}"))
    out = Path(__file__).parent / "results" / f"swap_{args.cost}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
