"""Starting a service's children with the exit policy of a daemon that cannot start.

A port that cannot be bound is one line naming the listener
(L{senselink.errors.StartupError}). In the foreground it ends the program with
that line on stderr and exit code 1; in twistd's daemon mode it is logged as
CRITICAL and raised, for twistd to report to the waiting parent process.
"""

from twisted.internet.error import CannotListenError

from senselink.errors import StartupError, listen_error
from senselink.log import Logger

log = Logger()


def start_each(parent, method, listeners):
    """Call C{method} (C{"startService"}, C{"privilegedStartService"}) of each child of
    C{parent}; a C{CannotListenError} becomes a L{StartupError} naming the listener
    (C{listeners}: service name -> C{"on UDP {where}"})."""
    for child in parent:
        try:
            getattr(child, method)()
        except CannotListenError as e:
            raise listen_error(listeners.get(child.name, child.name + " {where}"), e) from None


def start_or_exit(parent, method, listeners, foreground):
    """L{start_each}, with a L{StartupError} ending the start as the policy above says."""
    try:
        start_each(parent, method, listeners)
    except StartupError as error:
        if foreground:
            # One line on stderr (twistd -n shows it in its log) and exit code 1.
            raise SystemExit(f"senselink: {error}") from None
        log.critical("{error}", error=str(error))
        raise
