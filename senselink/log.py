"""Logging levels: which events reach the log, decided where the log is written.

Our modules log through plain C{twisted.logger.Logger}s. The level
(C{LOGLEVEL} / C{--log-level}) filters events at the observer that writes
the log, so it applies to Twisted's own lines too: with WARNING, lines such
as "KasaDatagramProtocol starting on 9999" do not appear. Under twistd,
L{twistd_observer} makes the observer twistd would make (stdout, the
C{--logfile} with rotation on SIGUSR1, or syslog) and filters it. Code on a
hot path that would build a DEBUG line per request or per message asks a
C{debug} flag that the daemon sets from the same level, so a line that is
off costs nothing.
"""

import sys
from types import MappingProxyType

from twisted.logger import (FilteringLogObserver, Logger, LogLevel, LogLevelFilterPredicate,
                            textFileLogObserver)

__all__ = ("Logger", "LEVELS", "parse_level", "filtered", "twistd_observer")

LEVELS = MappingProxyType({"DEBUG": LogLevel.debug, "INFO": LogLevel.info, "WARNING": LogLevel.warn,
          "WARN": LogLevel.warn, "ERROR": LogLevel.error, "CRITICAL": LogLevel.critical})


_RANK = (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error, LogLevel.critical)


def parse_level(name) -> LogLevel:
    """The L{LogLevel} called C{name} (DEBUG, INFO, WARNING, ERROR, CRITICAL); ValueError if unknown."""
    key = str(name).strip().upper()
    if key not in LEVELS:
        raise ValueError(f"unknown log level {name!r}; use one of DEBUG, INFO, WARNING, ERROR, "
                         f"CRITICAL")
    return LEVELS[key]


# Twisted's own lines that ours replace: ClientService's "Scheduling retry 1 to
# connect ... in 0.847092650452272 seconds" (each source logs its reconnects
# once, with a rounded delay). Their warnings and errors still show.
QUIETER = MappingProxyType({"twisted.application._client_service": LogLevel.warn})


def filtered(observer, level: LogLevel):
    """C{observer}, receiving only events at C{level} or above (see L{QUIETER})."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    for namespace, floor in QUIETER.items():
        predicate.setLogLevelForNamespace(namespace, max(level, floor, key=_RANK.index))
    return FilteringLogObserver(observer, [predicate])


def twistd_observer(options, level: LogLevel):
    """The observer twistd would make from its C{options}, filtered by C{level}.

    twistd uses it when it is the application's C{ILogObserver} component
    (see L{senselink.tap.TwistdRoot}): stdout in the foreground, else the
    C{--logfile} (default twistd.log) rotated on SIGUSR1, or syslog.
    """
    return filtered(_twistd_default(options), level)


def _twistd_default(options):
    """twistd's own choice (as twisted.scripts._twistd_unix.UnixAppLogger makes it)."""
    if options.get("syslog"):
        from twisted.python import syslog
        from twisted.logger import LegacyLogObserverWrapper
        return LegacyLogObserverWrapper(syslog.SyslogObserver(options.get("prefix", "")).emit)
    path = options.get("logfile", "")
    nodaemon = options.get("nodaemon", False)
    if path == "-" or (nodaemon and not path):
        if not nodaemon:
            sys.exit("Daemons cannot log to stdout, exiting!")
        return textFileLogObserver(sys.stdout)
    from twisted.python import logfile
    log_file = logfile.LogFile.fromFullPath(path or "twistd.log")
    _rotate_on_sigusr1(log_file)
    return textFileLogObserver(log_file)


def _rotate_on_sigusr1(log_file):
    import signal
    if not hasattr(signal, "SIGUSR1") or signal.getsignal(signal.SIGUSR1):
        return

    def rotate(signum, frame):
        from twisted.internet import reactor
        reactor.callFromThread(log_file.rotate)
    signal.signal(signal.SIGUSR1, rotate)
