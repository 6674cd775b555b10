"""Home Assistant's websocket messages read within bounds, and its text shown safely.

Pure: no I/O. L{decode} turns one websocket message (bytes or text) into
the messages it carries (Home Assistant may coalesce several into one JSON
array), or says in one clause why it cannot: not UTF-8, nested deeper than
L{MAX_DEPTH} (measured before the parser sees it), not JSON. L{shown} and
L{error_text} make what a server sent fit for a log line: clipped, control
characters escaped, a list or map named by its size.
"""

import json

from senselink.excerpt import excerpt, shown_name
from senselink.jsondepth import too_deep

MAX_DEPTH = 64              # nesting levels of a message; a deeper one is refused unread


class Unreadable(Exception):
    """A message that cannot be read: C{key} names the kind of problem, the text says it."""

    def __init__(self, key, text):
        super().__init__(text)
        self.key = key


def decode(payload, max_depth=MAX_DEPTH) -> list:
    """The messages of one websocket message (a list of whatever JSON values it holds);
    L{Unreadable} when it is not UTF-8, too deep or not JSON."""
    text = payload
    if isinstance(payload, (bytes, bytearray)):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Unreadable("utf-8", f"sent a message that is not UTF-8 ({e.reason} at byte "
                                      f"{e.start} of {len(payload):,})") from None
    if too_deep(text, max_depth):
        raise Unreadable("deep", f"sent a message nested deeper than {max_depth} levels "
                                 f"({len(text):,} characters)")
    try:
        decoded = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise Unreadable("json", f"sent a message that is not JSON ({shown(str(e))}): "
                                 f"{excerpt(text)}") from None
    return decoded if isinstance(decoded, list) else [decoded]


def shown(value) -> str:
    """A value from the server as a log line shows it: short, control characters escaped."""
    if isinstance(value, str):
        return shown_name(value)
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__} of {len(value)} items"
    return excerpt(value)


def error_text(message) -> str:
    """The C{code: message} of a failed result, whatever shape its C{error} has."""
    error = message.get("error")
    if isinstance(error, dict):
        return f"{shown(error.get('code'))}: {shown(error.get('message'))}"
    return f"error {shown(error)}"
