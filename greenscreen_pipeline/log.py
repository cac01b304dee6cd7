"""The sweep application's logging: loggers under "greenscreen.pipeline", one console handler.

Messages keep the form users know, "greenscreen: ..." on stdout and "greenscreen:
warning: ..." on stderr. The per-run progress lines ("[3/8] run 002 done ...") are
the sweep's output, not log records: `executors.progress` prints them.
"""

from __future__ import annotations

import logging
import sys

ROOT = "greenscreen.pipeline"


def logger(module: str) -> logging.Logger:
    """The logger of a module of this package: greenscreen_pipeline.x -> greenscreen.pipeline.x."""
    return logging.getLogger(ROOT + module.removeprefix("greenscreen_pipeline"))


class _Console(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"greenscreen: {level}{record.getMessage()}"


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


def configure(level: int = logging.INFO) -> None:
    """Sends the pipeline's records to the console: info to stdout, warnings up to stderr.

    Called once by the command line; a program that imports the package keeps its own
    logging configuration, since nothing is configured on import.
    """
    root = logging.getLogger(ROOT)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    out, err = logging.StreamHandler(sys.stdout), logging.StreamHandler(sys.stderr)
    out.addFilter(_Below(logging.WARNING))
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(_Console())
        root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
