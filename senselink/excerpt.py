"""What a log line or an error message shows of something received: a short excerpt.

Nothing from outside (a payload, a request body, a config value) is quoted
whole: at most L{MAX_SHOWN} characters of it, then its full size.
"""

MAX_SHOWN = 200


# A message that already quotes an excerpt (our words around it) is cut only past this.
MAX_MESSAGE = 2 * MAX_SHOWN


def clip(text: str, limit=MAX_SHOWN) -> str:
    """C{text}, or its start, an ellipsis and its full size when longer than C{limit}."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def excerpt(value) -> str:
    """The repr of C{value}, clipped; long text or bytes are cut before their repr is made."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > MAX_SHOWN:
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{value[:MAX_SHOWN]!r}… ({len(value)} {unit})"
    return clip(repr(value))
