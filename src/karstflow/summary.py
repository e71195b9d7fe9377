"""Headline figures: one JSON per region with a section per stage, one CSV row per region."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def region_summary(region: str, grid: Mapping[str, Any], sections: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the stage sections of one region; keys are the stage names."""
    return {"region": region, "grid": dict(grid), **{name: dict(body) for name, body in sections.items()}}


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, list | tuple):
        # Lists (bounds, per-class vectors) stay readable in one cell.
        out[prefix] = ";".join("" if v is None else str(v) for v in value)
    else:
        out[prefix] = value


def summary_table(summaries: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per region, columns ``section.key`` in first-seen order; regions sorted."""
    rows = []
    for summary in summaries:
        flat: dict[str, Any] = {}
        _flatten("", summary, flat)
        rows.append(flat)
    table = pd.DataFrame(rows)
    return table.sort_values("region").reset_index(drop=True)
