"""The import graph of the karstflow package has no cycle.

Every module under src/karstflow is parsed (not imported) and every ``import`` /
``from ... import`` in it counts, at any depth: a lazy import inside a function closes a
cycle as surely as one at the top of the module, it only hides it until run time.

One narrow exception: a package ``__init__`` importing one of its OWN submodules inside a
function (the factory pattern of ``karstflow.sources.make_source`` and
``karstflow.demo``). Importing a submodule always runs its package's ``__init__`` first,
so a submodule using its package is hierarchy, not a peer dependency, and by the time
the ``__init__``'s function runs the package is fully initialised. The same import at
the top of the ``__init__`` still counts, and so does every import between peer modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import karstflow

PACKAGE = "karstflow"
ROOT = Path(karstflow.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str, known: set[str]) -> str | None:
    """The karstflow module ``name`` refers to: itself, else its closest known parent package."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


class _ImportVisitor(ast.NodeVisitor):
    """Every import of a module with the names it refers to and whether it is deferred."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.depth = 0
        self.found: list[tuple[str, bool]] = []  # (dotted name, inside a function)

    def _function(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Import(self, node: ast.Import) -> None:
        self.found.extend((a.name, self.depth > 0) for a in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join([*base, node.module] if node.module else base)
        else:
            stem = node.module or ""
        # `from karstflow import io` imports the package and its submodule karstflow.io
        self.found.append((stem, self.depth > 0))
        self.found.extend((f"{stem}.{a.name}", self.depth > 0) for a in node.names)


def _imports(module: str, path: Path, known: set[str]) -> dict[str, bool]:
    """karstflow modules that ``module`` imports -> True when every such import is deferred."""
    is_package = path.name == "__init__.py"
    visitor = _ImportVisitor(module if is_package else module.rpartition(".")[0])
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    out: dict[str, bool] = {}
    for name, deferred in visitor.found:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        hit = _resolve(name, known)
        if hit is not None and hit != module:
            out[hit] = out.get(hit, True) and deferred
    return out


def import_graph() -> nx.DiGraph:
    """Module -> module it imports (edge attribute ``deferred``: only inside functions)."""
    modules = _modules()
    known = set(modules)
    g = nx.DiGraph()
    g.add_nodes_from(known)
    for name, path in modules.items():
        for target, deferred in _imports(name, path, known).items():
            g.add_edge(name, target, deferred=deferred, package_init=path.name == "__init__.py")
    return g


def _is_deferred_own_submodule(g: nx.DiGraph, a: str, b: str) -> bool:
    """A package's ``__init__`` importing its own submodule inside a function (see the notes)."""
    e = g.edges[a, b]
    return bool(e["package_init"] and e["deferred"] and b.startswith(a + "."))


def _cycle_graph(g: nx.DiGraph) -> nx.DiGraph:
    h = g.copy()
    h.remove_edges_from([(a, b) for a, b in g.edges if _is_deferred_own_submodule(g, a, b)])
    return h


def test_the_graph_sees_lazy_and_relative_imports():
    g = import_graph()
    assert "karstflow.conditions" in g and "karstflow.convenience" in g
    assert "karstflow.rules" not in g
    # convenience uses model and conditions; model uses conditions and nothing back
    assert g.has_edge("karstflow.convenience", "karstflow.model")
    assert g.has_edge("karstflow.convenience", "karstflow.conditions")
    assert g.has_edge("karstflow.model", "karstflow.conditions")
    assert not g.has_edge("karstflow.model", "karstflow.convenience")
    # imports inside functions are edges too (report imports demo only inside one)
    assert (
        g.has_edge("karstflow.report", "karstflow.demo") and g.edges["karstflow.report", "karstflow.demo"]["deferred"]
    )


def test_the_exception_is_only_a_package_deferring_its_own_submodule():
    g = import_graph()
    exempt = {(a, b) for a, b in g.edges if _is_deferred_own_submodule(g, a, b)}
    assert all(b.startswith(a + ".") for a, b in exempt)
    # a deferred peer import (as model -> rules was) would still close a cycle
    h = _cycle_graph(g)
    h.add_edge("karstflow.conditions", "karstflow.convenience", deferred=True, package_init=False)
    assert list(nx.simple_cycles(h))


def test_karstflow_has_no_import_cycle():
    g = _cycle_graph(import_graph())
    cycles = sorted(nx.simple_cycles(g), key=len)
    assert not cycles, "import cycle(s) in karstflow: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:10])


# What the Snakefile must not import while it plans: every Snakemake start pays for it, and
# on a cluster every job is one (the executor starts Snakemake in the allocation). These
# come with the stage code, in the jobs' own scripts.
HEAVY_AT_START_UP = ("rioxarray", "dask.array", "scipy", "networkx", "sklearn", "statsmodels", "numba", "matplotlib")


def test_planning_the_demo_imports_no_raster_or_model_stack(workflow_runner, tmp_path):
    import subprocess
    import sys

    workdir = workflow_runner.copy(tmp_path / "run")
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', sorted(sys.modules), file=sys.stderr))\n"
        "sys.argv = ['snakemake', '--dry-run', '--quiet', 'all']\n"
        "from snakemake.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True, text=True, timeout=600)
    loaded_line = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    assert proc.returncode == 0 and loaded_line, proc.stderr[-3000:]
    loaded = set(ast.literal_eval(loaded_line[-1].removeprefix("LOADED ")))
    assert "karstflow.tiling" in loaded  # the probe did plan the workflow
    assert sorted(m for m in HEAVY_AT_START_UP if m in loaded) == []
