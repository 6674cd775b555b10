"""Reading values out of MQTT payloads, bounded whatever arrives.

A payload is UTF-8 text: the value itself (C{42.5}, C{on}) or a JSON
document read with a keypath. Before C{json.loads} sees a document, its
nesting is measured without recursion (L{senselink.jsondepth}); deeper than
L{MAX_DEPTH} levels is refused, so no payload reaches the parser's
recursion limit. The payload size is bounded before this, by the MQTT
decoder (C{max_payload_size}).
"""

import json

from senselink.jsondepth import too_deep
from senselink.keypath import MISSING, lookup
from senselink.power import UnreadableValue
from senselink.readings import PowerPaths

MAX_DEPTH = 64          # nesting levels of a JSON payload


def document(text: str):
    """The JSON document C{text}, or L{UnreadableValue}."""
    if too_deep(text, MAX_DEPTH):
        raise UnreadableValue(f"the JSON is nested deeper than {MAX_DEPTH} levels, or its "
                              f"brackets do not match")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise UnreadableValue("the payload is not JSON") from None


def parse(payload: bytes):
    """C{(the JSON document in C{payload}, None)}, or C{(None, why it has none)}.

    Parsed once per message, whichever number of plugs read keypaths in it.
    """
    try:
        return document(payload.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "the payload is not UTF-8 text"
    except UnreadableValue as e:
        return None, str(e)


def at(parsed, keypath):
    """The raw value at C{keypath} (a keypath, or a L{PowerPaths}) in a parsed document."""
    if isinstance(keypath, PowerPaths):   # Parts or a Product: the model names a missing one
        return keypath.read(parsed)
    found = lookup(parsed, keypath)
    if found is MISSING:
        raise UnreadableValue(f"the JSON has nothing at keypath {keypath!r}")
    return found

