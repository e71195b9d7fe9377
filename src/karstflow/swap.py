"""The forest-farmland swap plan: reclaimable forest that makes up the capacity lost.

Choose patches ``x_i in {0, 1}`` of reclaimable forest so that the capacity they activate
covers the capacity lost with the abandoned parcels, at least ecological cost::

    minimise  sum(cost_i * x_i)   subject to   sum(capacity_i * x_i) >= required

a minimum-knapsack (covering) problem, NP-hard in general but solved exactly for the
sizes of a county by the mixed-integer solver HiGHS through
:func:`scipy.optimize.milp`, to a relative gap of ``mip_rel_gap`` (default 1e-6; 0 for a
proof of optimality) with HiGHS' dual bound reported beside the plan.

Above ``milp_max_candidates`` patches (or when HiGHS stops at its time limit without a
solution) the plan falls back to a greedy heuristic, logged: scipy has no heuristic for
this problem, so :func:`greedy_cover` is ours (the classic ratio greedy that, at every
step, also tries closing the gap with the single cheapest patch that covers it, followed
by removing patches that became redundant). The LP relaxation gives a lower bound on the
optimum, so the greedy plan always comes with a certified bound on its gap; when the MILP
ran too, the greedy plan is computed beside it and its true gap reported.

Costs (:func:`swap_costs`): ``area`` (ha of forest cleared), ``carbon`` (Mg C stored in
the patch: carbon density x area) or ``forest_type`` (priority weight x area, with
weights making sparse forest land cheaper than other forest land, cheaper than forested
land).

When all reclaimable forest together activates less than the capacity lost, the plan
takes all of it (it covers what it can) and says so: ``covered`` is False and
``shortfall_kg`` the capacity still missing.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

log = logging.getLogger(__name__)

__all__ = ["COST_KINDS", "SwapInputError", "SwapPlan", "greedy_cover", "map_swap_plan", "plan_swap", "swap_costs"]

COST_KINDS = ("area", "carbon", "forest_type")

# Relative tolerance of the coverage check: HiGHS satisfies constraints to about 1e-9 of
# the (normalised) demand; a plan short of the demand by less than this counts as covering.
_COVER_RTOL = 1e-7


class SwapInputError(ValueError):
    """Capacities, costs or settings that do not allow a plan."""


@dataclass
class SwapPlan:
    """A swap plan: which patches, at which cost, found how."""

    selected: np.ndarray
    required_kg: float
    planned_kg: float
    cost: float
    solver: str
    status: str
    covered: bool
    shortfall_kg: float
    lower_bound: float | None = None
    greedy_cost: float | None = None
    greedy_gap: float | None = None
    greedy_gap_bound: float | None = None
    mip_gap: float | None = None
    seconds: float = 0.0

    def headline(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("selected")
        d["n_selected"] = int(self.selected.sum())
        return d


def swap_costs(
    candidates: pd.DataFrame,
    kind: str,
    *,
    forest_type_weights: Mapping[str, float] | None = None,
    area_column: str = "area_ha",
    carbon_column: str = "carbon_mg_ha",
    type_column: str = "forest_type",
) -> np.ndarray:
    """Ecological cost of clearing each patch.

    ``area``: ha; ``carbon``: Mg C stored (carbon density Mg C/ha x ha); ``forest_type``:
    ``forest_type_weights[type]`` x ha (weights per ha, e.g. sparse 1, other 10,
    forested 100).
    """
    if kind not in COST_KINDS:
        raise SwapInputError(f"cost: expected one of {list(COST_KINDS)}, found {kind!r}")
    if area_column not in candidates.columns:
        raise SwapInputError(f"candidates: expected a column {area_column!r}, found {list(candidates.columns)}")
    area = candidates[area_column].to_numpy(dtype=np.float64)
    if kind == "area":
        cost = area
    elif kind == "carbon":
        if carbon_column not in candidates.columns:
            raise SwapInputError(
                f"candidates: cost 'carbon' needs a carbon density column {carbon_column!r} (Mg C/ha), found "
                f"{list(candidates.columns)}"
            )
        cost = candidates[carbon_column].to_numpy(dtype=np.float64) * area
    else:
        if type_column not in candidates.columns:
            raise SwapInputError(
                f"candidates: cost 'forest_type' needs a column {type_column!r}, found {list(candidates.columns)}"
            )
        weights = dict(forest_type_weights or {})
        types = candidates[type_column].astype(str).to_numpy()
        unknown = sorted(set(types) - set(weights))
        if unknown:
            raise SwapInputError(
                f"forest type(s) {unknown} have no priority weight; expected weights for every type "
                f"(config key capacity.swap.forest_type_weights, has {sorted(weights)})"
            )
        cost = np.array([weights[t] for t in types], dtype=np.float64) * area
    bad = ~np.isfinite(cost) | (cost < 0)
    if bad.any():
        raise SwapInputError(
            f"cost {kind!r}: expected finite costs >= 0, found {int(bad.sum())} negative or missing (e.g. "
            f"{cost[bad][:5].tolist()})"
        )
    return cost


def _check(capacity: np.ndarray, cost: np.ndarray, required: float) -> None:
    if capacity.shape != cost.shape or capacity.ndim != 1:
        raise SwapInputError(
            f"expected one capacity and one cost per patch, found shapes {capacity.shape} and {cost.shape}"
        )
    if (~np.isfinite(capacity) | (capacity < 0)).any():
        raise SwapInputError("capacity: expected finite capacities >= 0 kg")
    if (~np.isfinite(cost) | (cost < 0)).any():
        raise SwapInputError("cost: expected finite costs >= 0")
    if not np.isfinite(required):
        raise SwapInputError(f"required capacity: expected a finite number of kg, found {required}")


def greedy_cover(capacity_kg: npt.ArrayLike, cost: npt.ArrayLike, required_kg: float) -> np.ndarray:
    """Greedy selection covering ``required_kg`` (see the module notes); boolean per patch.

    Walks the patches by cost per kg; before adding each, the plan "chosen so far + the
    cheapest single unchosen patch that covers the rest" is a candidate; the cheapest
    candidate wins, then patches that became redundant are dropped (costliest first).
    Assumes total capacity >= required (callers check). O(n log n).
    """
    a = np.asarray(capacity_kg, dtype=np.float64)
    c = np.asarray(cost, dtype=np.float64)
    n = len(a)
    chosen = np.zeros(n, dtype=bool)
    if required_kg <= 0 or n == 0:
        return chosen
    usable = np.flatnonzero(a > 0)
    with np.errstate(divide="ignore"):
        ratio = c[usable] / a[usable]
    by_ratio = usable[np.lexsort((usable, -a[usable], ratio))]
    by_cap = usable[np.lexsort((usable, -a[usable]))]  # capacity descending
    eligible: list[tuple[float, int]] = []  # heap of (cost, i) of patches covering the rest alone
    ptr = 0
    best_cost = np.inf
    best: np.ndarray | None = None
    residual = float(required_kg)
    spent = 0.0
    tol = _COVER_RTOL * required_kg
    for i in by_ratio:
        # the residual only shrinks, so the patches able to close it only grow in number
        while ptr < len(by_cap) and a[by_cap[ptr]] >= residual - tol:
            heapq.heappush(eligible, (float(c[by_cap[ptr]]), int(by_cap[ptr])))
            ptr += 1
        while eligible and chosen[eligible[0][1]]:
            heapq.heappop(eligible)
        if eligible and spent + eligible[0][0] < best_cost:
            best_cost = spent + eligible[0][0]
            best = chosen.copy()
            best[eligible[0][1]] = True
        if chosen[i]:
            continue
        chosen[i] = True
        spent += float(c[i])
        residual -= float(a[i])
        if residual <= tol:
            if spent < best_cost:
                best_cost, best = spent, chosen.copy()
            break
    if best is None:
        best = chosen
    # drop patches that became redundant, costliest first
    total = float(a[best].sum())
    for i in sorted(np.flatnonzero(best), key=lambda k: (-c[k], a[k], k)):
        if total - a[i] >= required_kg - tol:
            best[i] = False
            total -= float(a[i])
    return best


def _lp_bound(a: np.ndarray, c: np.ndarray, required: float) -> float | None:
    res = linprog(c, A_ub=-(a / required)[None, :], b_ub=[-1.0], bounds=(0, 1), method="highs")
    return float(res.fun) if res.status == 0 else None


def _milp(
    a: np.ndarray, c: np.ndarray, required: float, time_limit_s: float, mip_rel_gap: float = 1e-6
) -> tuple[np.ndarray | None, str, float | None, float | None]:
    """Selection, status text, HiGHS' dual bound and the relative gap reached."""
    # Normalised to a demand of 1: capacities in kg span orders of magnitude and HiGHS'
    # feasibility tolerance is absolute.
    res = milp(
        c,
        integrality=np.ones(len(a)),
        bounds=Bounds(0, np.where(a > 0, 1, 0)),
        constraints=LinearConstraint((a / required)[None, :], lb=1.0, ub=np.inf),
        options={"time_limit": float(time_limit_s), "mip_rel_gap": float(mip_rel_gap), "disp": False},
    )
    bound = getattr(res, "mip_dual_bound", None)
    if res.x is None:
        return None, f"no solution ({res.message})", bound, None
    x = np.round(res.x).astype(bool)
    status = "optimal" if res.status == 0 else f"time limit reached, best plan found ({res.message})"
    return x, status, bound, getattr(res, "mip_gap", None)


def plan_swap(
    capacity_kg: npt.ArrayLike,
    cost: npt.ArrayLike,
    required_kg: float,
    *,
    milp_max_candidates: int = 2000,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-6,
    compare_greedy: bool = True,
) -> SwapPlan:
    """The least-cost set of patches whose capacity covers ``required_kg``.

    Parameters
    ----------
    capacity_kg, cost
        Per reclaimable patch: capacity activated (kg) and ecological cost (>= 0).
    required_kg
        Capacity to make up (the capacity lost).
    milp_max_candidates
        Above this many patches the greedy heuristic plans instead of the MILP (logged).
    time_limit_s
        Time limit of the MILP; at the limit its best plan is kept (status says so), or the
        greedy plan when it has none.
    mip_rel_gap
        Relative gap at which HiGHS stops: the plan costs at most this much more than the
        optimum (0 proves optimality exactly, which can take far longer on a few hundred
        patches of near-equal worth for no practical difference: 1e-6 of 400 ha is 4 m2).
    compare_greedy
        Also compute the greedy plan when the MILP plans, to report its gap.

    Returns
    -------
    SwapPlan
        ``status`` is one of "optimal", "time limit reached, ...", "greedy" (heuristic,
        with ``greedy_gap_bound`` against the LP bound), "nothing to cover", "no
        reclaimable forest", or "infeasible: ..." (all patches taken, ``covered`` False).
    """
    t0 = time.perf_counter()
    a = np.asarray(capacity_kg, dtype=np.float64).reshape(-1)
    c = np.asarray(cost, dtype=np.float64).reshape(-1)
    required = float(required_kg)
    _check(a, c, required)
    n = len(a)
    total = float(a.sum())

    def done(selected: np.ndarray, solver: str, status: str, **extra: Any) -> SwapPlan:
        planned = float(a[selected].sum())
        short = max(0.0, required - planned)
        covered = planned >= required * (1 - _COVER_RTOL) or required <= 0
        plan = SwapPlan(
            selected=selected, required_kg=required, planned_kg=planned, cost=float(c[selected].sum()),
            solver=solver, status=status, covered=bool(covered), shortfall_kg=0.0 if covered else short,
            seconds=time.perf_counter() - t0, **extra,
        )
        log.info(
            "swap: %s (%s): %d of %d patches, %.1f of %.1f t, cost %.3f",
            status, solver, int(selected.sum()), n, planned / 1000, required / 1000, plan.cost,
        )
        return plan

    if required <= 0:
        return done(np.zeros(n, dtype=bool), "none", "nothing to cover")
    if n == 0 or total <= 0:
        log.warning("swap: no reclaimable forest; the %.1f t lost cannot be made up", required / 1000)
        return done(np.zeros(n, dtype=bool), "none", "no reclaimable forest")
    if total < required * (1 - _COVER_RTOL):
        log.warning(
            "swap: all reclaimable forest activates %.1f t, less than the %.1f t lost; the plan takes all of it",
            total / 1000, required / 1000,
        )
        return done(
            a > 0, "none",
            f"infeasible: all reclaimable forest activates {total / 1000:.1f} t of the {required / 1000:.1f} t lost",
        )

    lower = _lp_bound(a, c, required)
    greedy = None
    if n > milp_max_candidates or compare_greedy:
        greedy = greedy_cover(a, c, required)
    greedy_cost = float(c[greedy].sum()) if greedy is not None else None

    def gap(value: float | None, ref: float | None) -> float | None:
        if value is None or ref is None:
            return None
        if ref <= 0:
            return 0.0 if value <= 0 else None
        return (value - ref) / ref

    if n > milp_max_candidates:
        log.warning(
            "swap: %d reclaimable patches exceed capacity.swap.milp_max_candidates (%d); planning with the greedy "
            "heuristic (cost %.3f, at most %.2f %% above the LP bound %.3f)",
            n, milp_max_candidates, greedy_cost, 100 * (gap(greedy_cost, lower) or 0.0), lower or float("nan"),
        )
        assert greedy is not None
        return done(
            greedy,
            "greedy",
            "greedy",
            lower_bound=lower,
            greedy_cost=greedy_cost,
            greedy_gap_bound=gap(greedy_cost, lower),
        )

    if not 0 <= mip_rel_gap < 1:
        raise SwapInputError(f"mip_rel_gap: expected a relative gap in [0, 1), found {mip_rel_gap}")
    x, status, bound, mip_gap = _milp(a, c, required, time_limit_s, mip_rel_gap)
    if x is None or float(a[x].sum()) < required * (1 - _COVER_RTOL):
        log.warning("swap: the MILP gave no covering plan (%s); falling back to the greedy heuristic", status)
        greedy = greedy if greedy is not None else greedy_cover(a, c, required)
        greedy_cost = float(c[greedy].sum())
        return done(
            greedy,
            "greedy",
            "greedy",
            lower_bound=lower,
            greedy_cost=greedy_cost,
            greedy_gap_bound=gap(greedy_cost, lower),
        )
    milp_cost = float(c[x].sum())
    optimal = status == "optimal"
    return done(
        x, "milp", status,
        lower_bound=bound if bound is not None else lower,
        mip_gap=mip_gap,
        greedy_cost=greedy_cost,
        # against the MILP plan: the greedy plan's gap to the optimum, to within mip_gap
        greedy_gap=gap(greedy_cost, milp_cost) if optimal else None,
        greedy_gap_bound=gap(greedy_cost, lower),
    )


def map_swap_plan(
    planned: Any,
    reclaimable: Any,
    abandoned: Any,
    bounds: Any,
    *,
    farmland: Any = None,
    type_colours: Mapping[str, Any] | None = None,
    title: str | None = None,
    subtitle: str | None = None,
):
    """Map: the planned forest patches (by forest type) beside the abandoned parcels.

    ``planned``, ``reclaimable``, ``abandoned`` and ``farmland`` are GeoDataFrames on one
    CRS; reclaimable patches left out of the plan are outlined, existing farmland pale.
    """
    from karstflow.plotting import finish_map, forest_type_colours, map_figure

    fig, ax = map_figure(bounds, title=title or "Forest-farmland swap plan")
    entries: dict[str, Any] = {}
    if farmland is not None and len(farmland):
        farmland.plot(ax=ax, color="#f3ecc2", edgecolor="none")
        entries["cultivated land"] = "#f3ecc2"
    if len(reclaimable):
        reclaimable.plot(ax=ax, facecolor="none", edgecolor="#2e7d32", linewidth=0.5)
        entries["reclaimable forest, not planned"] = {"facecolor": "none", "edgecolor": "#2e7d32"}
    colours = dict(
        type_colours or forest_type_colours(sorted(planned["forest_type"].astype(str).unique()) if len(planned) else [])
    )
    for ftype, colour in colours.items():
        sub = planned[planned["forest_type"].astype(str) == ftype] if len(planned) else planned
        if len(sub):
            sub.plot(ax=ax, color=colour, edgecolor="black", linewidth=0.4)
            entries[f"planned: {ftype} ({float(sub['area_ha'].sum()):.1f} ha)"] = {
                "facecolor": colour,
                "edgecolor": "black",
            }
    if len(abandoned):
        abandoned.plot(ax=ax, color="#d32f2f", edgecolor="#7f0000", linewidth=0.3)
        entries[f"abandoned parcels ({len(abandoned)})"] = "#d32f2f"
    finish_map(ax, entries, legend_title=subtitle)
    return fig
