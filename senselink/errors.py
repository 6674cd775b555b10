"""Errors that stop the daemon from starting: one line for people, no traceback."""


class StartupError(Exception):
    """The daemon cannot start (port in use, bad interface, ...). C{str()} is one line."""


def listen_error(what, error) -> StartupError:
    """A L{StartupError} for a listener that could not bind.

    C{what} says which, with C{{where}} for the address: C{"on UDP {where}"}.
    """
    reason = getattr(error, "socketError", None) or error
    reason = getattr(reason, "strerror", None) or str(reason)
    interface = getattr(error, "interface", None)
    port = getattr(error, "port", None)
    where = f"{interface}:{port}" if interface else str(port)
    return StartupError(f"cannot listen {what.format(where=where)}: {reason}")
