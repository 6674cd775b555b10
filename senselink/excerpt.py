"""What a log line or an error message shows of something received: a short excerpt.

Nothing from outside (a payload, a request body, a config value, a topic)
is quoted whole: at most L{MAX_SHOWN} characters of it, then its full size.
"""

MAX_SHOWN = 200


# A message that already quotes an excerpt (our words around it) is cut only past this.
MAX_MESSAGE = 2 * MAX_SHOWN


def clip(text: str, limit=MAX_SHOWN) -> str:
    """C{text}, or its start, an ellipsis and its full size when longer than C{limit}."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def excerpt(value, size=None) -> str:
    """The repr of C{value}, whole, or its first L{MAX_SHOWN} characters and the full size.

    Text and bytes are cut before their repr is made (a huge payload is never
    copied whole) and their size is given in characters or bytes, whatever
    their repr's length (a byte C{\\xff} takes four characters). C{size} is
    the full size when C{value} is only the start of what was received (the
    first bytes of a payload whose rest was skipped).
    """
    if not isinstance(value, (str, bytes, bytearray)):
        return clip(repr(value))
    full = len(value) if size is None else size
    shown = repr(value[:MAX_SHOWN])
    if full == len(value) <= MAX_SHOWN and len(shown) <= MAX_SHOWN:
        return shown
    unit = "characters" if isinstance(value, str) else "bytes"
    return f"{shown[:MAX_SHOWN]}… ({full} {unit})"



def shown_name(name) -> str:
    """A name (plug id, alias) as a log line or a table shows it.

    Itself when printable, else its repr (a control character never reaches a
    terminal raw); clipped to L{MAX_SHOWN} characters and its full size either way.
    """
    text = str(name)
    return clip(text) if text.isprintable() else excerpt(text)
