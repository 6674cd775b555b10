"""Logging with a level threshold, on top of C{twisted.logger}.

twistd owns the log observers; this module only decides which events our
own loggers emit at all (C{LOGLEVEL} / C{--log-level}), so DEBUG lines cost
nothing when they are off.
"""

from twisted.logger import Logger as _TwistedLogger
from twisted.logger import LogLevel

_PRIORITY = {LogLevel.debug: 0, LogLevel.info: 1, LogLevel.warn: 2, LogLevel.error: 3,
             LogLevel.critical: 4}
NAMES = {"DEBUG": 0, "INFO": 1, "WARNING": 2, "WARN": 2, "ERROR": 3, "CRITICAL": 4}

_threshold = [1]


def set_level(name: str):
    """Set the threshold by name (DEBUG, INFO, WARNING, ERROR, CRITICAL); ValueError if unknown."""
    key = str(name).strip().upper()
    if key not in NAMES:
        raise ValueError(f"unknown log level {name!r}; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    _threshold[0] = NAMES[key]


def debug_enabled() -> bool:
    return _threshold[0] == 0


class Logger(_TwistedLogger):
    """A C{twisted.logger.Logger} that drops events below the configured level."""

    def emit(self, level, format=None, **kwargs):
        if _PRIORITY.get(level, 4) < _threshold[0]:
            return
        super().emit(level, format, **kwargs)
