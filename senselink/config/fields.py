"""Config fields: one key's type check (a converter), default and documentation.

A converter takes the loaded YAML value (and the raw scalar text, for values
YAML 1.1 reads surprisingly, such as unquoted on/off and some MACs) and
returns the typed value, or raises L{Invalid} saying what was expected.
"""

import math
import os
import re
from dataclasses import dataclass

from senselink.excerpt import MAX_SHOWN, clip


class Invalid(ValueError):
    """Raised by field types; the message says what was expected.

    C{key}: the key inside a mapping value that is at fault (the error then
    names its line), or None.
    """

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, eq=False)
class Field:
    """One config key: its type check, default and documentation."""

    convert: object             # converter(value, raw=None), or None: taken as written
    default: object = None
    required: bool = False
    doc: str = ""
    secret: bool = False        # a password or token: never logged, file permissions checked
    secret_keys: tuple = None   # of a secret mapping: the keys that are secrets (None: all)


# ---------------------------------------------------------------- describing values

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(text: str) -> str:
    """Replace C{${NAME}} with the environment variable NAME."""
    def replace(match):
        name = match.group(1)
        if name not in os.environ:
            raise Invalid(f"environment variable {name} is not set (used as ${{{name}}})")
        return os.environ[name]
    return ENV_REFERENCE.sub(replace, text)


def shown(value):
    """The repr of C{value} for a message, clipped (whole, so that L{redact} finds it)."""
    return clip(repr(value))


def describe_value(value):
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return f"a mapping {shown(dict(value))}"
    if isinstance(value, list):
        return f"a list {shown(list(value))}"
    return f"{shown(value)} ({type(value).__name__})"


def redact(message, value):
    """C{message} without the text of C{value} (a secret that failed its type check).

    Converters describe a wrong value with its repr ("expected text, got a list
    ['...']"); for secret fields every repr of the value and of what it holds
    (mapping values and list items, not mapping keys), whole or clipped, is
    replaced by C{***}.
    """
    hidden = []

    def collect(item):
        if isinstance(item, dict):
            hidden.append(repr(dict(item)))
            for inner in item.values():
                collect(inner)
        elif isinstance(item, list):
            hidden.append(repr(list(item)))
            for inner in item:
                collect(inner)
        elif isinstance(item, str):
            hidden.append(repr(item))
            if len(item) >= 4:
                hidden.append(item)
    collect(value)
    hidden += [clip(text) for text in hidden if len(text) > MAX_SHOWN]
    for text in sorted(set(hidden), key=len, reverse=True):
        message = message.replace(text, "***")
    return message


def _maybe_env(value):
    if isinstance(value, str) and "${" in value:
        return substitute_env(value)
    return value


# ---------------------------------------------------------------- converters


def number(minimum=None, maximum=None, above=None):
    def convert(value, raw=None):
        value = _maybe_env(value)
        if isinstance(value, str):
            try:
                if not value.isascii() or "_" in value:    # float() reads "1_000", "١٢٣"
                    raise ValueError
                value = float(value)
            except ValueError:
                raise Invalid(f"expected a number, got {describe_value(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected a number, got {describe_value(value)}")
        if not math.isfinite(value):
            raise Invalid(f"expected a finite number, got {shown(value)}")
        if minimum is not None and value < minimum:
            raise Invalid(f"expected a number >= {minimum}, got {shown(value)}")
        if maximum is not None and value > maximum:
            raise Invalid(f"expected a number <= {maximum}, got {shown(value)}")
        if above is not None and value <= above:
            raise Invalid(f"expected a number > {above}, got {shown(value)}")
        return value
    return convert


def integer(minimum=None, maximum=None):
    check = number(minimum, maximum)

    def convert(value, raw=None):
        value = check(value)
        if value != int(value):
            raise Invalid(f"expected a whole number, got {shown(value)}")
        return int(value)
    return convert


def string(value, raw=None):
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise Invalid(f"expected text, got {describe_value(value)}")
    return substitute_env(str(value))


def alias(value, raw=None):
    """A plug's name as Sense and the Kasa app show it: text without control characters."""
    value = string(value)
    bad = [c for c in value if ord(c) < 32 or 127 <= ord(c) < 160]
    if bad:
        raise Invalid(f"expected a name without control characters, got {shown(value)} "
                      f"(it holds {bad[0]!r})")
    if not value.strip():
        raise Invalid("expected a non-empty name")
    return value


def boolean(value, raw=None):
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {describe_value(value)}")
    return value


def state_value(value, raw=None):
    """A state to compare with: the text as written, so unquoted on/off stay 'on'/'off'."""
    if isinstance(value, (list, dict)) or value is None:
        raise Invalid(f"expected a state value such as on or off, got {describe_value(value)}")
    if isinstance(value, bool) and raw is not None:
        return raw
    if isinstance(value, bool):
        return "on" if value else "off"
    return substitute_env(str(value)) if isinstance(value, str) else str(raw if raw is not None else value)


MAX_STATE_WORDS = 256
MAX_KEYPATHS = 16


def state_word(key) -> str:
    """A key of C{state_power} as the state text it matches.

    The loader keeps unquoted on/off/yes/no/true/false keys as written;
    numbers (fan speeds 1, 2, 3) match their text.
    """
    if isinstance(key, bool):
        return "on" if key else "off"
    if isinstance(key, (int, float)) and math.isfinite(key):
        return str(key)
    if not isinstance(key, str):
        raise Invalid(f"expected a state word as key, got {describe_value(key)}; quote it", key=key)
    if not key:
        raise Invalid("a state word must not be empty", key=key)
    return key


def state_power(value, raw=None):
    """C{{state word: watts}}: each value a finite number >= 0."""
    if not isinstance(value, dict) or not value:
        raise Invalid(f"expected a mapping of states to watts such as {{heat: 1800, idle: 4}}, "
                      f"got {describe_value(value)}")
    if len(value) > MAX_STATE_WORDS:
        raise Invalid(f"expected at most {MAX_STATE_WORDS} states, got {len(value)}")
    check = number(minimum=0)
    out = {}
    for key, watts in value.items():
        word = state_word(key)
        if word in out:
            raise Invalid(f"state {shown(word)} is given twice", key=key)
        try:
            out[word] = float(check(watts))
        except Invalid as e:
            raise Invalid(f"watts of state {shown(word)}: {e}", key=key) from None
    return out


def keypath(value, raw=None):
    """A '/'-separated keypath with at least one key."""
    value = string(value)
    if not any(value.split("/")):
        raise Invalid(f"expected a '/'-separated keypath like ENERGY/Power, got {shown(value)}")
    return value


def keypath_list(value, raw=None):
    """A list of keypaths (power parts, summed)."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a list of keypaths like [ENERGY/Power/0, ENERGY/Power/1], "
                      f"got {describe_value(value)}")
    if len(value) > MAX_KEYPATHS:
        raise Invalid(f"expected at most {MAX_KEYPATHS} keypaths, got {len(value)}")
    return [keypath(item) for item in value]


_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


def mac(value, raw=None):
    if not isinstance(value, str) or not _MAC.match(value):
        # YAML 1.1 reads some unquoted MACs as sexagesimal numbers: use the text as written.
        if raw is not None and _MAC.match(str(raw)):
            value = raw
        else:
            raise Invalid(f"expected a MAC address like 53:75:31:F6:4B:01, got {describe_value(value)}")
    return value.replace("-", ":").upper()


_DEVICE_ID = re.compile(r"^[0-9A-Fa-f]{40}$")


def device_id(value, raw=None):
    if not isinstance(value, str) or not _DEVICE_ID.match(value):
        raise Invalid(f"expected 40 hexadecimal digits, got {describe_value(value)}")
    return value.upper()


def id_list(value, raw=None):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a list of plug ids, got {describe_value(value)}")
    out = []
    for item in value:
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise Invalid(f"expected plug ids, got {describe_value(item)} in the list")
        out.append(str(item))
    return out


def power_curve(value, raw=None):
    if not isinstance(value, list) or len(value) < 2:
        raise Invalid("expected a list of at least two [input, watts] points")
    points = []
    check = number()
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            raise Invalid(f"expected [input, watts] pairs, got {describe_value(point)}")
        x, w = check(point[0]), check(point[1])
        if w < 0:
            raise Invalid(f"watts must not be negative, got {shown(w)}")
        points.append((float(x), float(w)))
    xs = [x for x, _ in points]
    if sorted(set(xs)) != xs:
        raise Invalid("power_curve inputs must be strictly increasing")
    return points


def host(value, raw=None):
    value = string(value)
    if not value or any(c.isspace() for c in value):
        raise Invalid(f"expected a host name or IP address, got {shown(value)}")
    return value


def string_map(value, raw=None):
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of names to text, got {describe_value(value)}")
    return {str(k): string(v) for k, v in value.items()}
