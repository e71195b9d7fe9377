"""Rule expressions: the conditions that define a cultivation-convenience subgroup.

A rule is a pandas ``DataFrame.eval`` expression over the driver columns, two conditions
joined by ``and``, e.g. ``x1_elevation_m > 130 and x10_area_ha < 0.2`` (the study's
first subgroup). A polygon fails the cultivation-convenience criterion ("inconvenient")
when ANY rule holds (:func:`inconvenient`); the reserve-farmland stage applies the rules of
``model/convenience_rules.json`` to forest polygons that way. Testing and searching for
rules is :mod:`karstflow.convenience`.

API::

    rule_variables(rule, columns) -> list[str]          # validates the expression
    rule_mask(drivers, rule) -> np.ndarray[bool]
    inconvenient(drivers, rules) -> np.ndarray[bool]      # any rule holds
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "RuleError",
    "inconvenient",
    "rule_mask",
    "rule_variables",
]

_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.Compare, ast.Name, ast.Load, ast.Constant,
    ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq, ast.UnaryOp, ast.USub, ast.Not,
)


class RuleError(ValueError):
    """A rule that is not a valid comparison expression over the driver columns."""


def rule_variables(rule: str, columns: Iterable[str]) -> list[str]:
    """Driver columns a rule uses, in order of first use; raises :class:`RuleError`.

    A rule may use comparisons (``< <= > >= == !=``) of columns with numbers, joined by
    ``and``/``or``/``not``; nothing else (no calls, no attribute access).
    """
    if not isinstance(rule, str) or not rule.strip():
        raise RuleError(f"a rule must be a non-empty expression string, found {rule!r}")
    try:
        tree = ast.parse(rule.strip(), mode="eval")
    except SyntaxError as err:
        raise RuleError(f"rule {rule!r} is not a valid expression: {err.msg}") from err
    cols = list(columns)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise RuleError(
                f"rule {rule!r}: {type(node).__name__} is not allowed; use comparisons of driver columns "
                "with numbers joined by and/or, e.g. 'x1_elevation_m > 130 and x10_area_ha < 0.2'"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            raise RuleError(f"rule {rule!r}: only numbers may be compared, found {node.value!r}")
        if isinstance(node, ast.Name):
            found.append((node.col_offset, node.id))
    names: list[str] = []
    for _, name in sorted(found):  # in the order they are written
        if name not in names:
            names.append(name)
    unknown = [n for n in names if n not in cols]
    if unknown:
        raise RuleError(f"rule {rule!r}: unknown column(s) {unknown}; expected driver columns {cols}")
    if not names:
        raise RuleError(f"rule {rule!r} uses no driver column")
    return names


def rule_mask(drivers: pd.DataFrame, rule: str) -> np.ndarray:
    """Where ``rule`` holds (bool array in row order); missing values never satisfy it."""
    rule_variables(rule, drivers.columns)
    out = drivers.eval(rule, engine="python")
    return np.asarray(out, dtype=bool)


def inconvenient(drivers: pd.DataFrame, rules: Sequence[str]) -> np.ndarray:
    """True where ANY rule holds: the polygon fails the cultivation-convenience criterion."""
    mask = np.zeros(len(drivers), dtype=bool)
    for rule in rules:
        mask |= rule_mask(drivers, rule)
    return mask
