"""The stage registry: what every stage needs and makes, and which stages a region gets.

One pure table (:data:`STAGES`) says, per stage, the inputs it requires, the inputs it
reads when they are given, the stages it builds on, its outputs, its summary section and
its maps. The workflow derives everything else from it: which regions get which rules,
what goes into ``summary.json`` / ``summary.csv``, what the report maps, and the plan
printed at start-up and written to ``results/{region}/plan.json``.

A requirement is a tuple of alternatives, any one of which satisfies it. An alternative is
an input key of the region (``"parcels"``, a key of ``regions.<id>.inputs``) or a stage,
written ``"@landcover"``. Alternatives are tried in order, so an input the owner gives
wins over a stage that would make the same layer (a ``landcover`` input over the
classified map, ``abandonment_labels`` over the classified abandonment).

Output and map templates are paths under ``results/{region}/``; ``{year}`` and
``{period}`` are filled by the workflow from the region's years and periods.

A stage may *provide* an input key: it makes the layer the region would otherwise have to
give (``vegetation`` makes ``annual_stack`` from the scenes it acquires, ``monthly_climate``
makes ``climate``, ``soil`` makes ``soil_grids`` from SoilGrids, ``lithology`` makes
``carbonate``). :data:`PROVIDED` maps each such key to its stage and file, and
:func:`layer_path` says which file a region's stage reads. The pseudo-input
``remote_source`` is present for regions whose source is ``stac`` or ``earthengine``:
what those stages pull needs nothing else; ``earthengine_source`` only for ``earthengine``
(WorldPop, stage worldpop, which provides ``population``).

API::

    STAGES: dict[str, Stage]                      # in dependency order
    plan_region(available, requested=None) -> dict[str, StagePlan]
    chosen(plan, stage, need) -> str              # the alternative a running stage uses
    PlanError                                     # a requested stage cannot run
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Need = tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One stage of the workflow (a group of rules under ``results/{region}/<name>/``)."""

    name: str
    description: str
    requires: tuple[Need, ...] = ()
    optional: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    summary: str | None = None
    maps: tuple[str, ...] = ()
    provides: tuple[tuple[str, str], ...] = ()  # (input key, output path it stands for)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Stages named in the requirements (any alternative) and optional inputs."""
        names = [a[1:] for need in self.requires for a in need if a.startswith("@")]
        names += [a[1:] for a in self.optional if a.startswith("@")]
        return tuple(dict.fromkeys(names))


def _stage(
    name: str,
    description: str,
    requires: Sequence[str | Sequence[str]] = (),
    *,
    optional: Sequence[str] = (),
    outputs: Sequence[str] = (),
    summary: str | None = None,
    maps: Sequence[str] = (),
    provides: Mapping[str, str] | None = None,
) -> Stage:
    needs = tuple((r,) if isinstance(r, str) else tuple(r) for r in requires)
    return Stage(
        name,
        description,
        needs,
        tuple(optional),
        tuple(outputs),
        summary,
        tuple(maps),
        tuple((provides or {}).items()),
    )


#: Present in a region's available inputs when its source is remote (stac, earthengine).
REMOTE_SOURCE = "remote_source"
#: Present in a region's available inputs when its source is earthengine: products only
#: Earth Engine serves (WorldPop).
EARTHENGINE_SOURCE = "earthengine_source"
# the owner's maps, else the classified map, else a public product crosswalked to the legend
_LANDCOVER = ("landcover", "@landcover", "@public_landcover")
_CLIMATE = ("climate", "@monthly_climate")
_SOIL = ("soil_grids", "@soil")

STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        _stage(
            "terrain",
            "DEM on the region grid; Horn slope, aspect and aspect class",
            ["dem"],
            outputs=["terrain/dem.tif", "terrain/slope.tif", "terrain/aspect.tif", "terrain/aspect_class.tif"],
            summary="terrain/terrain.json",
            maps=["terrain/dem.tif", "terrain/slope.tif", "terrain/aspect.tif", "terrain/aspect_class.tif"],
        ),
        _stage(
            "imagery",
            "cloud-masked median composites and clear counts per period",
            ["imagery", "periods"],
            outputs=["imagery/composite_{period}.tif", "imagery/clear_count_{period}.tif"],
            summary="imagery/imagery.json",
            maps=["imagery/composite_{period}.tif", "imagery/clear_count_{period}.tif"],
        ),
        _stage(
            "landcover",
            "random-forest land cover from the composites, validated (Kappa gate)",
            ["@imagery", "reference", "@terrain"],
            optional=["validation"],
            outputs=["landcover/landcover.tif", "landcover/accuracy.json", "landcover/confusion_matrix.csv"],
            summary="landcover/landcover.json",
            maps=["landcover/landcover.tif"],
        ),
        _stage(
            "abandonment",
            "class fractions of the reclaimed parcels and the abandonment decision",
            ["@landcover", "parcels"],
            outputs=["abandonment/parcels.gpkg", "abandonment/abandonment.json"],
            summary="abandonment/abandonment.json",
        ),
        _stage(
            "drivers",
            "drivers x1..x10 of every reclaimed parcel with its abandonment outcome",
            [
                ("abandonment_labels", "@abandonment"),
                "parcels",
                "@terrain",
                "settlements",
                "roads",
                "farmland",
                "villages",
                "quality_grades",
            ],
            outputs=["drivers/parcel_drivers.csv"],
            summary="drivers/drivers.json",
        ),
        _stage(
            "model",
            "abandonment logit (Hosmer-Lemeshow, VIF) and cultivation-convenience rules",
            ["@drivers"],
            outputs=[
                "model/logit_coefficients.csv",
                "model/model_fit.json",
                "model/vif.csv",
                "model/convenience_rules.json",
                "model/figures/coefficients.png",
                "model/figures/calibration.png",
                "model/figures/roc.png",
                "model/figures/rule_heatmaps.png",
            ],
            summary="model/model.json",
        ),
        _stage(
            "reserve",
            "forest land checked against the reserve-farmland limiting factors",
            ["forest", "@terrain"],
            optional=[
                "townships",
                "redline",
                "soil",
                "irrigation",
                "accumulated_temperature",
                "precipitation",
                "@model",
            ],
            outputs=[
                "reserve/reclaimable_forest.gpkg",
                "reserve/reserve_summary.csv",
                "reserve/figures/reclaimable_by_type.png",
                "reserve/figures/failing_factor.png",
            ],
            summary="reserve/reserve.json",
        ),
        _stage(
            "capacity",
            "grain capacity lost and activated, and the forest-farmland swap plan",
            ["@reserve", "@abandonment", "farmland", "quality_grades"],
            outputs=["capacity/capacity_summary.csv", "capacity/swap_plan.gpkg", "capacity/figures/swap_plan.png"],
            summary="capacity/capacity.json",
        ),
        _stage(
            "vegetation",
            "growing-season vegetation composites per year (Landsat, Sentinel-2, MODIS) and the "
            "cross-calibrated annual stack",
            [("vegetation_scenes", REMOTE_SOURCE)],
            outputs=["vegetation/annual_stack.nc", "vegetation/calibration.json"],
            summary="vegetation/vegetation.json",
            provides={"annual_stack": "vegetation/annual_stack.nc"},
        ),
        _stage(
            "monthly_climate",
            "monthly climate (temperature, precipitation, solar radiation, FAO-56 ETo) on the "
            "grid and its annual aggregate",
            [("climate_monthly", REMOTE_SOURCE)],
            outputs=["climate/climate_monthly.nc", "climate/climate_annual.nc"],
            summary="climate/climate.json",
            provides={"climate": "climate/climate_annual.nc"},
        ),
        _stage(
            "soil",
            "soil grids (texture, organic carbon, available water) from SoilGrids 250 m",
            [REMOTE_SOURCE],
            outputs=["soil/soil_grids.nc"],
            summary="soil/soil.json",
            provides={"soil_grids": "soil/soil_grids.nc"},
        ),
        _stage(
            "public_landcover",
            "land cover per year from a public product (ESA WorldCover, CLCD) crosswalked to the legend",
            [("landcover_product", REMOTE_SOURCE)],
            outputs=["landcover/public_{lc_year}.tif"],
            summary="landcover/public_landcover.json",
            maps=["landcover/public_{lc_year}.tif"],
        ),
        _stage(
            "lithology",
            "carbonate-rock mask from a lithology map and the region's carbonate units",
            ["lithology"],
            outputs=["lithology/carbonate.tif"],
            summary="lithology/lithology.json",
            maps=["lithology/carbonate.tif"],
            provides={"carbonate": "lithology/carbonate.tif"},
        ),
        _stage(
            "greening",
            "annual vegetation-index cube and its Theil-Sen / Mann-Kendall trend",
            [("annual_stack", "@vegetation")],
            outputs=[
                "greening/ndvi_annual.nc",
                "greening/trend_slope.tif",
                "greening/trend_slope_low.tif",
                "greening/trend_slope_high.tif",
                "greening/trend_p.tif",
                "greening/trend_class.tif",
            ],
            summary="greening/greening.json",
            maps=[
                "greening/trend_slope.tif",
                "greening/trend_slope_low.tif",
                "greening/trend_slope_high.tif",
                "greening/trend_p.tif",
                "greening/trend_class.tif",
            ],
        ),
        _stage(
            "desertification",
            "rocky-desertification grades per year on carbonate rock, areas and transitions",
            ["@greening", ("carbonate", "@lithology")],
            optional=["bedrock_exposure", "@terrain"],
            outputs=[
                "desertification/rd_grade_annual.nc",
                "desertification/rd_grade_{rd_year}.tif",
                "desertification/rd_area.csv",
                "desertification/rd_transition.csv",
            ],
            summary="desertification/desertification.json",
            maps=["desertification/rd_grade_{rd_year}.tif"],
        ),
        _stage(
            "carbon",
            "carbon storage per land-cover year (InVEST carbon pools) and sequestration",
            [_LANDCOVER, "carbon_pools"],
            outputs=["carbon/carbon_storage_{lc_year}.tif", "carbon/carbon_sequestration.tif"],
            summary="carbon/carbon.json",
            maps=["carbon/carbon_storage_{lc_year}.tif", "carbon/carbon_sequestration.tif"],
        ),
        _stage(
            "npp",
            "CASA NPP, heterotrophic respiration and NEP per year (monthly steps by default), and the NPP trend",
            ["@greening", _CLIMATE, _LANDCOVER],
            # monthly CASA (carbon.time_step: monthly, the default) reads climate/climate_monthly.nc;
            # the workflow stops at start-up when a region's npp would run without it
            optional=["@monthly_climate"],
            outputs=["carbon/npp_annual.nc", "carbon/npp_trend_slope.tif", "carbon/npp_trend_class.tif"],
            summary="carbon/npp.json",
            maps=["carbon/npp_trend_slope.tif", "carbon/npp_trend_class.tif"],
        ),
        _stage(
            "soil_retention",
            "soil retention and soil loss (RUSLE, InVEST SDR form) per service year",
            ["@terrain", _CLIMATE, _SOIL, "biophysical", _LANDCOVER],
            # the monthly erosivity form (the default) reads the monthly cube of that stage
            optional=["@greening", "@monthly_climate"],
            outputs=[
                "services/soil_retention_{service_year}.tif",
                "services/soil_loss_{service_year}.tif",
                "services/ls_factor.tif",
                "services/flow_accumulation.tif",
            ],
            maps=[
                "services/soil_retention_{service_year}.tif",
                "services/soil_loss_{service_year}.tif",
                "services/ls_factor.tif",
                "services/flow_accumulation.tif",
            ],
        ),
        _stage(
            "water_yield",
            "water yield (InVEST annual water yield) per service year",
            [_CLIMATE, _SOIL, "biophysical", _LANDCOVER],
            outputs=["services/water_yield_{service_year}.tif"],
            maps=["services/water_yield_{service_year}.tif"],
        ),
        _stage(
            "habitat_quality",
            "habitat degradation and quality (InVEST threats) per service year",
            [_LANDCOVER],
            optional=["roads", "access"],
            outputs=["services/habitat_quality_{service_year}.tif", "services/habitat_degradation_{service_year}.tif"],
            maps=["services/habitat_quality_{service_year}.tif", "services/habitat_degradation_{service_year}.tif"],
        ),
        _stage(
            "services",
            "service totals, changes, trade-offs and improvement zones",
            [("@carbon", "@soil_retention", "@water_yield", "@habitat_quality")],
            optional=["townships", "@terrain"],
            outputs=[
                "services/services.csv",
                "services/services_change.csv",
                "services/tradeoffs.csv",
                "services/improvement_zones.tif",
                "services/improvement_townships.csv",
            ],
            summary="services/services.json",
            maps=["services/carbon_storage_{service_year}.tif", "services/improvement_zones.tif"],
        ),
        _stage(
            "worldpop",
            "gridded population per year from WorldPop 100 m (Earth Engine), kept in totals on the grid, "
            "for the coupling stage",
            ["townships", EARTHENGINE_SOURCE],
            outputs=["population/population.nc"],
            summary="population/population.json",
            provides={"population": "population/population.nc"},
        ),
        _stage(
            "coupling",
            "social-ecological coupling per township and grid cell: population change against greening, "
            "rocky desertification, NPP and services; coupling coordination degree, Moran's I, spatial "
            "regression and GWR",
            ["townships", ("population", "@worldpop", "population_table"), "@greening"],
            optional=["@desertification", "@npp", "@services", "@terrain"],
            outputs=[
                "coupling/coupling_townships.csv",
                "coupling/coupling_cells.gpkg",
                "coupling/coupling_statistics.json",
                "coupling/figures/coupling_types.png",
                "coupling/figures/gwr_coefficients.png",
                "coupling/figures/moran_scatter.png",
            ],
            summary="coupling/coupling.json",
        ),
    )
}


#: Input key -> (stage, output path under results/{region}/) of the stage that provides it.
PROVIDED: dict[str, tuple[str, str]] = {key: (s.name, path) for s in STAGES.values() for key, path in s.provides}


class PlanError(ValueError):
    """A stage a region asks for cannot run: its inputs are missing."""


@dataclass
class StagePlan:
    """Whether a stage runs for a region and, if not, what it lacks."""

    runs: bool
    uses: dict[Need, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": self.runs}
        if self.runs:
            out["uses"] = sorted(set(self.uses.values()))
        else:
            out["missing_inputs"] = self.missing
            out["reason"] = self.reason
        return out


def _describe(alternative: str) -> str:
    if alternative == REMOTE_SOURCE:
        return "a remote source (regions.<id>.source: stac or earthengine)"
    if alternative == EARTHENGINE_SOURCE:
        return "an Earth Engine source (regions.<id>.source: earthengine)"
    return f"stage {alternative[1:]}" if alternative.startswith("@") else alternative


def plan_region(
    available: Iterable[str],
    requested: Sequence[str] | None = None,
    stages: Mapping[str, Stage] = STAGES,
    region: str = "region",
) -> dict[str, StagePlan]:
    """The plan of one region: which stages run, and for the others the missing inputs.

    ``available`` holds the region's input keys (and ``periods`` when it has periods).
    ``requested`` (the region's ``stages:``) limits the region to those stages and the
    stages they build on; a requested stage that cannot run raises :class:`PlanError`
    naming the region, the stage and the missing input keys.
    """
    have = set(available)
    unknown = sorted(set(requested or ()) - set(stages))
    if unknown:
        raise PlanError(f"config key regions.{region}.stages: unknown stage(s) {unknown}; stages: {list(stages)}")
    wanted = _with_dependencies(requested, stages, have) if requested else set(stages)
    out: dict[str, StagePlan] = {}
    for name, stage in stages.items():  # dependency order: a stage follows those it needs
        uses: dict[Need, str] = {}
        missing: list[str] = []
        for need in stage.requires:
            for alternative in need:
                ok = out[alternative[1:]].runs if alternative.startswith("@") else alternative in have
                if ok:
                    uses[need] = alternative
                    break
            else:
                missing.append(" or ".join(_describe(a) for a in need))
        missing_keys = _missing_keys(stage, out, have)
        if name not in wanted:
            out[name] = StagePlan(False, missing=missing_keys, reason="not requested in stages")
        elif missing:
            out[name] = StagePlan(False, missing=missing_keys, reason="needs " + "; ".join(missing))
        else:
            out[name] = StagePlan(True, uses=uses)
    for name in requested or ():
        if not out[name].runs:
            raise PlanError(
                f"config key regions.{region}.stages: stage {name!r} cannot run for region {region}: "
                f"missing input(s) {out[name].missing} ({out[name].reason})"
            )
    return out


def _possible(have: set[str], stages: Mapping[str, Stage]) -> dict[str, bool]:
    """Whether each stage could run on the region's inputs, whatever is requested."""
    possible: dict[str, bool] = {}
    for name, stage in stages.items():  # dependency order
        possible[name] = all(
            any(possible[a[1:]] if a.startswith("@") else a in have for a in need) for need in stage.requires
        )
    return possible


def _with_dependencies(requested: Sequence[str], stages: Mapping[str, Stage], have: set[str]) -> set[str]:
    """The requested stages and, transitively, the stage each requirement uses: its first
    alternative the region's inputs satisfy. An input given pulls in no stage (a landcover
    input does not bring the classification), and an any-of requirement (services) brings
    only its first possible alternative besides those requested."""
    possible = _possible(have, stages)
    todo, seen = list(requested), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for need in stages[name].requires:
            for a in need:
                if a.startswith("@") and possible[a[1:]]:
                    todo.append(a[1:])
                    break
                if not a.startswith("@") and a in have:
                    break
    # optional stages (convenience rules for reserve, terrain slope for desertification)
    # run only when requested or needed; they are not pulled in by being optional
    return seen


def _missing_keys(stage: Stage, out: Mapping[str, StagePlan], have: set[str]) -> list[str]:
    """Input keys that would let the stage run: the first input alternative of each unmet
    requirement, or the missing keys of the stage it names."""
    keys: list[str] = []
    for need in stage.requires:
        met = any((out[a[1:]].runs if a.startswith("@") else a in have) for a in need)
        if met:
            continue
        # an input key the owner can give (a remote source is a choice of source, not a file)
        inputs = [a for a in need if not a.startswith("@") and a != REMOTE_SOURCE] or [
            a for a in need if a == REMOTE_SOURCE
        ]
        if inputs:
            keys.append(inputs[-1] if len(inputs) > 1 else inputs[0])
        else:
            for a in need:
                keys.extend(k for k in out[a[1:]].missing if k not in keys)
                break
    return list(dict.fromkeys(keys))


def layer_path(plan: Mapping[str, StagePlan], stage: str, key: str) -> str | None:
    """Where ``stage`` reads layer ``key`` from, under ``results/{region}/``: the harmonised
    input (``inputs/<key>.<ext>``) when the region gives it, else the file of the stage
    that provides it (:data:`PROVIDED`); None when the stage does not read it."""
    from karstflow.inputs import INPUTS

    for need, alternative in plan[stage].uses.items() if runs(plan, stage) else ():
        if key in need:
            if alternative == key:
                return f"inputs/{key}.{INPUTS[key].extension}"
            provider, path = PROVIDED[key]
            if alternative == "@" + provider:
                return path
    return None


def chosen(plan: Mapping[str, StagePlan], stage: str, need: Sequence[str]) -> str | None:
    """The alternative of requirement ``need`` that a running stage uses (None otherwise)."""
    return plan[stage].uses.get(tuple(need))


def runs(plan: Mapping[str, StagePlan], stage: str) -> bool:
    return stage in plan and plan[stage].runs


def format_plan(plans: Mapping[str, Mapping[str, StagePlan]]) -> str:
    """The region x stage table printed at start-up: + runs, - skipped (missing inputs)."""
    names = list(STAGES)
    width = max([len(r) for r in plans] + [6])
    lines = ["stage plan (+ runs, - does not; results/{region}/plan.json says why)"]
    lines.append(" " * width + "  " + " ".join(f"{n[:5]:>5}" for n in names))
    for region, plan in plans.items():
        marks = " ".join(f"{'+' if plan[n].runs else '-':>5}" for n in names)
        lines.append(f"{region:<{width}}  {marks}")
    for region, plan in plans.items():
        for n in names:
            if not plan[n].runs and plan[n].reason != "not requested in stages":
                lines.append(f"  {region} {n}: missing {', '.join(plan[n].missing) or '-'}")
    return "\n".join(lines)
