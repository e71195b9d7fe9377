"""Run-time plumbing shared by the workflow's entry scripts: logging, thread counts and the
adapter between Snakemake's ``snakemake`` object and each script's ``main``."""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any


def configure_logging(log_file: str | Path | None, level: int = logging.INFO) -> logging.Logger:
    """Send the ``karstflow`` loggers (and warnings) to the rule's log file and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    logger = logging.getLogger("karstflow")

    # A failing step must say why in its own log, not only on the terminal.
    def log_uncaught(exc_type, exc, tb):
        if not issubclass(exc_type, KeyboardInterrupt):
            logger.error("failed: %s", exc, exc_info=(exc_type, exc, tb))
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = log_uncaught
    return logger


def set_threads(threads: int) -> None:
    """Use ``threads`` for dask's threaded scheduler and numba, as the rule granted."""
    import dask

    threads = max(1, int(threads))
    dask.config.set(scheduler="threads", num_workers=threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]  # set at import
    except ImportError:  # numba is optional for stages that do not use it
        pass


# The entry scripts of workflow/scripts each define
# ``main(input, output, params, wildcards, threads=1)`` and end with
# ``if "snakemake" in globals(): run_script(main, snakemake)``; ``run_script`` is the
# only place that reads Snakemake's object, and ``call_script`` runs a script from plain
# dicts (tests, notebooks).


class Params(dict):
    """A rule's params or wildcards: a dict with attribute access (``p.alpha`` is ``p["alpha"]``).

    Built from a dict or from a Snakemake ``Namedlist`` (its named entries); every entry,
    named or not, stays available in order as :attr:`positional`.
    """

    def __init__(self, source: Any = None, /, **entries: Any) -> None:
        super().__init__()
        positional: list[Any] = []
        if source is None:
            pass
        elif hasattr(source, "_names") and hasattr(source, "items"):  # a Snakemake Namedlist
            for name, value in source.items():
                self[name] = self._plain(value)
            positional = [self._plain(value) for value in source]
        elif isinstance(source, Mapping):
            for name, value in source.items():
                self[name] = self._plain(value)
            positional = list(self.values())
        else:  # a plain sequence: positional entries only
            positional = [self._plain(value) for value in source]
        for name, value in entries.items():
            self[name] = self._plain(value)
            positional.append(self[name])
        self.positional = positional

    @staticmethod
    def _plain(value: Any) -> Any:
        return value

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no entry {name!r}; it has {sorted(self)}") from None


class Paths(list):
    """A list of paths that prints as Snakemake prints one (space-separated)."""

    def __str__(self) -> str:
        return " ".join(map(str, self))


class Files(Params):
    """A rule's input or output: name -> path (``str``) or list of paths (:class:`Paths`).

    ``f.dem`` is ``f["dem"]``; :attr:`positional` lists every file in order, flattened,
    as ``snakemake.input[i]`` indexes them.
    """

    def __init__(self, source: Any = None, /, **entries: Any) -> None:
        super().__init__(source, **entries)
        flat: list[str] = []
        for value in self.positional:
            flat.extend(value if isinstance(value, list) else [value])
        self.positional = flat

    @staticmethod
    def _plain(value: Any) -> Any:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if isinstance(value, Iterable):
            return Paths(Files._plain(v) for v in value)
        return value


def run_script(main: Callable[..., Any], smk: Any) -> Any:
    """Run an entry script's ``main`` with the rule's files, params, wildcards and threads.

    ``smk`` is Snakemake's ``snakemake`` object (or anything with its attributes): logging
    goes to ``smk.log[0]`` (and stderr), dask and numba get ``smk.threads``. A rule with a
    ``tile`` param (the ``<rule>_tile`` rules of workflow/rules/tiling.smk) runs ``main`` on
    the tile named by its ``{tile}`` wildcard (:func:`karstflow.tiling.run_tile`).
    """
    configure_logging(smk.log[0] if smk.log else None)
    set_threads(smk.threads)
    files, outputs, params, wildcards = Files(smk.input), Files(smk.output), Params(smk.params), Params(smk.wildcards)
    if "tile" in params:
        from karstflow.tiling import run_tile

        spec = params.pop("tile")
        return run_tile(main, files, outputs, params, wildcards, smk.threads, spec)
    return main(files, outputs, params, wildcards, smk.threads)


def load_script(path: str | Path) -> ModuleType:
    """Import an entry script from its path, as module ``karstflow_script_<stem>``.

    Not as ``__main__`` and without a ``snakemake`` global, so its adapter does not run.
    """
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"karstflow_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not a Python script")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise TypeError(f"{path}: defines no main(input, output, params, wildcards, threads)")
    return module


def call_script(
    path: str | Path,
    input: Mapping[str, Any],
    output: Mapping[str, Any],
    params: Mapping[str, Any] | None = None,
    wildcards: Mapping[str, Any] | None = None,
    threads: int = 1,
    log: str | Path | None = None,
) -> Any:
    """Run the entry script at ``path`` as its rule would, from plain dicts (no Snakemake).

    The logging, warning-capture, excepthook, dask and numba settings the run makes are
    restored afterwards, so a test process is left as it was.
    """
    import dask

    module = load_script(path)
    smk = SimpleNamespace(
        input=input,
        output=output,
        params=params or {},
        wildcards=wildcards or {},
        threads=threads,
        log=[str(log)] if log else [],
    )
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_hook = sys.excepthook
    saved_dask = copy.deepcopy(dask.config.config)
    numba = sys.modules.get("numba")
    saved_numba = numba.get_num_threads() if numba is not None else None
    try:
        return run_script(module.main, smk)
    finally:
        for handler in root.handlers[:]:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        logging.captureWarnings(False)
        sys.excepthook = saved_hook
        # sections a library registered during the run (distributed's defaults, when the
        # script imported it) stay: dropping them breaks that library later in the process;
        # the run's own settings (scheduler, num_workers) are scalars and are undone
        added = {k: v for k, v in dask.config.config.items() if k not in saved_dask and isinstance(v, dict)}
        dask.config.config.clear()
        dask.config.config.update(saved_dask)
        dask.config.config.update(added)
        if numba is not None and saved_numba is not None:
            numba.set_num_threads(saved_numba)
