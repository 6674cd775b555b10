"""Reading values out of MQTT payloads, bounded whatever arrives.

A payload is UTF-8 text: the value itself (C{42.5}, C{on}) or a JSON
document read with a keypath. Before C{json.loads} sees a document, its
nesting is measured without recursion (L{too_deep}); deeper than
L{MAX_DEPTH} levels is refused, so no payload reaches the parser's
recursion limit. The payload size is bounded before this, by the MQTT
decoder (C{max_payload_size}).
"""

import json
import re

from senselink.keypath import MISSING, lookup
from senselink.power import UnreadableValue
from senselink.readings import PowerPaths

MAX_DEPTH = 64          # nesting levels of a JSON payload

# A JSON string, or from a quote to the end when it is not closed: one match
# per quote at most, so removing strings takes linear time.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
_NOT_BRACKET = re.compile(r'[^\[\]{}]+')


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the brackets of C{text} outside strings nest deeper than C{limit}, or do not close.

    Linear in C{len(text)} times C{limit}, no recursion: each pass removes
    the innermost pairs of brackets.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    brackets = brackets.replace("{", "[").replace("}", "]")
    for _ in range(limit):
        brackets = brackets.replace("[]", "")
        if "[" not in brackets:
            return False
    return True


def document(text: str):
    """The JSON document C{text}, or L{UnreadableValue}."""
    if too_deep(text):
        raise UnreadableValue(f"the JSON is nested deeper than {MAX_DEPTH} levels, or its "
                              f"brackets do not match")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise UnreadableValue("the payload is not JSON") from None


def value(payload: bytes, keypath):
    """The raw value in C{payload}: its stripped text, or what is at C{keypath} in its JSON."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise UnreadableValue("the payload is not UTF-8 text") from None
    if keypath is None:
        text = text.strip()
        if not text:
            raise UnreadableValue("the payload is empty")
        return text
    if isinstance(keypath, PowerPaths):   # Parts or a Product: the model names a missing one
        return keypath.read(document(text))
    found = lookup(document(text), keypath)
    if found is MISSING:
        raise UnreadableValue(f"the JSON has nothing at keypath {keypath!r}")
    return found

