"""How deep a JSON text nests, measured without recursion, before a parser sees it.

C{json.loads} recurses once per nesting level: a small document of 30000
opening brackets reaches the recursion limit. Every JSON document we take
from outside (an MQTT payload, a web API body) is measured here first
against the bound its reader declares.
"""

import re

# A JSON string, or from a quote to the end when it is not closed: one match
# per quote at most, so removing strings takes linear time.
STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)
NOT_BRACKET = re.compile(r'[^\[\]{}]+')


def too_deep(text: str, limit: int) -> bool:
    """Whether the brackets of C{text} outside strings nest deeper than C{limit}, or do not close.

    Linear in C{len(text)} times C{limit}, no recursion: each pass removes
    the innermost pairs of brackets.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = NOT_BRACKET.sub("", STRING.sub("", text))
    brackets = brackets.replace("{", "[").replace("}", "]")
    for _ in range(limit):
        brackets = brackets.replace("[]", "")
        if "[" not in brackets:
            return False
    return True
