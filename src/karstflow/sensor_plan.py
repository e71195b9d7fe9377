"""Which sensor makes each year of the vegetation record, checked at start-up.

``vegetation.sensors`` (or ``regions.<id>.vegetation.sensors``) lists year ranges, each
with a sensor family (:data:`karstflow.sensors.SENSORS`). :func:`record_plan` clips them to
the region's years and says, per year, the sensor whose composite enters the cube and the
sensors composited in it (both sensors in an overlap year, which the cross-calibration
fits). Problems that would only surface hours later are errors here, naming the config
key: a year no range covers, a range before its sensor's first year, a sensor switch with
neither an overlap year nor configured coefficients (it would create a trend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from karstflow.sensors import FIRST_YEAR, SENSORS


class RecordPlanError(ValueError):
    """The configured sensor ranges cannot make the region's record."""


@dataclass(frozen=True)
class RecordPlan:
    """``sensor_of_year``: the sensor of each year in the cube; ``composites``: (sensor,
    year) composites to build; ``overlaps``: (earlier, later, year) pairs to calibrate on;
    ``reference``: the sensor whose scale the record takes."""

    sensor_of_year: dict[int, str]
    composites: list[tuple[str, int]]
    overlaps: list[tuple[str, str, int]] = field(default_factory=list)
    reference: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_sensor": self.reference,
            "sensor_of_year": {str(y): s for y, s in self.sensor_of_year.items()},
            "overlap_years": [{"from": b, "to": a, "year": y} for a, b, y in self.overlaps],
        }


def record_plan(
    ranges: Sequence[Mapping[str, Any]],
    years: Sequence[int],
    *,
    calibration: str = "overlap",
    coefficients: Sequence[Mapping[str, Any]] = (),
    reference: str | None = None,
    key: str = "vegetation.sensors",
) -> RecordPlan:
    """The record of ``years`` from the sensor ``ranges`` (see the module docstring)."""
    years = sorted(int(y) for y in years)
    first, last = years[0], years[-1]
    clipped = []
    for i, r in enumerate(ranges):
        sensor, lo, hi = str(r["sensor"]), int(r["first"]), int(r["last"])
        where = f"config key {key}[{i}]"
        if sensor not in SENSORS:
            raise RecordPlanError(f"{where}: unknown sensor {sensor!r}; expected one of {list(SENSORS)}")
        if lo > hi:
            raise RecordPlanError(f"{where}: first year {lo} is after last year {hi}")
        lo, hi = max(lo, first), min(hi, last)
        if lo > hi:
            continue  # outside the region's years
        if lo < FIRST_YEAR[sensor]:
            raise RecordPlanError(
                f"{where}: {sensor} has no record before {FIRST_YEAR[sensor]}, but the range starts in {lo}"
            )
        clipped.append((sensor, lo, hi))
    if not clipped:
        raise RecordPlanError(f"config key {key}: no range covers the region's years {first}-{last}")
    clipped.sort(key=lambda r: (r[1], r[2]))
    covered = {y for _, lo, hi in clipped for y in range(lo, hi + 1)}
    gaps = [y for y in years if y not in covered]
    if gaps:
        raise RecordPlanError(f"config key {key}: no sensor range covers year(s) {gaps}")
    configured = {(str(c["from"]), str(c["to"])) for c in coefficients}
    reference = reference or clipped[0][0]
    if reference not in {s for s, _, _ in clipped}:
        raise RecordPlanError(
            f"config key vegetation.reference_sensor: {reference!r} makes none of the years "
            f"{first}-{last}; sensors: {sorted({s for s, _, _ in clipped})}"
        )
    overlaps = []
    for (a, alo, ahi), (b, blo, bhi) in zip(clipped, clipped[1:], strict=False):
        if a == b:
            continue
        shared = [y for y in range(max(alo, blo), min(ahi, bhi) + 1)]
        if calibration == "coefficients" or not shared:
            pairs = {(b, a), (a, b)} & configured
            if not pairs and not shared:
                raise RecordPlanError(
                    f"config key {key}: {a} ends in {ahi} and {b} starts in {blo} with no overlap year, and "
                    f"vegetation.coefficients has no {b} -> {a} calibration: the switch would create a trend. "
                    f"Let the ranges share a year or give the coefficients."
                )
            if not pairs:
                raise RecordPlanError(
                    f"config key vegetation.coefficients: calibration 'coefficients' needs {b} -> {a} (or {a} -> {b})"
                )
            continue
        overlaps.append((a, b, shared[0]))
    sensor_of_year: dict[int, str] = {}
    composites: list[tuple[str, int]] = []
    for y in years:
        makers = [s for s, lo, hi in clipped if lo <= y <= hi]
        # in an overlap year the earlier range keeps the year; the later is composited to calibrate
        sensor_of_year[y] = reference if reference in makers else makers[0]
        composites.extend((s, y) for s in dict.fromkeys(makers))
    return RecordPlan(sensor_of_year, composites, overlaps, reference)
