"""Dagster's event logs of in-process runs into a file, instead of the terminal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import dagster as dg

# The line format of Dagster's console logger, so the file reads like `dagster dev`'s.
LINE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


class _Listener(logging.Handler):
    def __init__(self, listen: Callable[[str], None]) -> None:
        super().__init__(logging.DEBUG)
        self.listen = listen

    def emit(self, record: logging.LogRecord) -> None:
        self.listen(record.getMessage())


class RunLog:
    """One log file for the runs of a command; `listen(message)` also sees every line
    (a progress bar counts the steps a run reports)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.file = logging.FileHandler(path, encoding="utf-8")
        self.file.setFormatter(logging.Formatter(LINE_FORMAT))
        self.listen: Callable[[str], None] = lambda _message: None

    def loggers(self) -> dict[str, dg.LoggerDefinition]:
        """The loggers for `dg.Definitions(loggers=...)`: they replace the console one."""
        return {
            "run_log": dg.LoggerDefinition(
                self._logger, description=f"Event logs of the runs, into {self.path}."
            )
        }

    def run_config(self) -> dict[str, dict[str, dict[str, object]]]:
        """A run's config that starts these loggers: Dagster starts only the loggers its
        run config names, and falls back to the console one when it names none."""
        return {"loggers": {name: {} for name in self.loggers()}}

    def _logger(self, _context: dg.InitLoggerContext) -> logging.Logger:
        logger = logging.Logger("dagster", logging.DEBUG)
        logger.addHandler(self.file)
        logger.addHandler(_Listener(lambda message: self.listen(message)))
        return logger

    def close(self) -> None:
        self.file.close()
