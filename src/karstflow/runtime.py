"""Run-time plumbing shared by the workflow's entry scripts: logging and thread counts."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


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

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # numba is optional for stages that do not use it
        pass
