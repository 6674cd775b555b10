"""Config fields: one key's type check (a converter), default and documentation.

A converter takes the loaded YAML value (and the raw scalar text, for values
YAML 1.1 reads surprisingly, such as unquoted on/off and some MACs) and
returns the typed value, or raises L{Invalid} saying what was expected. The
scalar types (numbers with their ranges, text, names) are in
L{senselink.config.scalars}; the converters here build on them.
"""

import math
import re
from dataclasses import dataclass

from senselink.config.scalars import (ENV_REFERENCE, MAX_MAGNITUDE, MAX_NAME, MAX_TEXT, MAX_WATTS,
                                      Bounded, Invalid, alias, describe_value, figure, integer,
                                      maybe_env, name, number, plain_text, redact, shown, string,
                                      substitute_env)

# The scalar types, for the modules that take every converter from here.
__all__ = (
    "ENV_REFERENCE", "MAX_MAGNITUDE", "MAX_NAME", "MAX_TEXT", "MAX_WATTS", "Bounded", "Field",
    "Invalid", "alias", "boolean", "describe_value", "device_id", "figure", "host", "id_list",
    "integer", "keypath", "keypath_list", "mac", "maybe_env", "name", "number", "plain_text",
    "power_curve", "redact", "shown", "state_power", "state_value", "state_word", "string",
    "string_map", "substitute_env",
)


@dataclass(frozen=True, eq=False)
class Field:
    """One config key: its type check, default and documentation."""

    convert: object             # converter(value, raw=None), or None: taken as written
    default: object = None
    required: bool = False
    doc: str = ""
    secret: bool = False        # a password or token: never logged, file permissions checked
    secret_keys: tuple = None   # of a secret mapping: the keys that are secrets (None: all)


# ---------------------------------------------------------------- converters


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
    if isinstance(value, str):
        return plain_text(value)
    if isinstance(value, (int, float)):
        return str(raw if raw is not None else value)
    raise Invalid(f"expected a state value such as on or off, got {describe_value(value)}; "
                  f"quote it if it is meant as text")


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
    try:
        return plain_text(key)
    except Invalid as e:
        raise Invalid(f"state word: {e}", key=key) from None


def state_power(value, raw=None):
    """C{{state word: watts}}: each value a finite number >= 0."""
    if not isinstance(value, dict) or not value:
        raise Invalid(f"expected a mapping of states to watts such as {{heat: 1800, idle: 4}}, "
                      f"got {describe_value(value)}")
    if len(value) > MAX_STATE_WORDS:
        raise Invalid(f"expected at most {MAX_STATE_WORDS} states, got {len(value)}")
    check = number(0, MAX_WATTS, unit=" W")
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


_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}")


def mac(value, raw=None):
    if not isinstance(value, str) or not _MAC.fullmatch(value):
        # YAML 1.1 reads some unquoted MACs as sexagesimal numbers: use the text as written.
        if raw is not None and _MAC.fullmatch(str(raw)):
            value = raw
        else:
            raise Invalid(f"expected a MAC address like 53:75:31:F6:4B:01, got {describe_value(value)}")
    value = value.replace("-", ":").upper()
    # The all-zero and the broadcast address name no device. The group bit (an odd
    # first byte) is accepted: the original SenseLink's documented prefix 53:75:31,
    # used by its configs and by our derived MACs, has it, and Sense takes it.
    if value in ("00:00:00:00:00:00", "FF:FF:FF:FF:FF:FF"):
        raise Invalid(f"expected the MAC address of one device, got {value} "
                      f"({'all zero' if value[0] == '0' else 'the broadcast address'})")
    return value


_DEVICE_ID = re.compile(r"[0-9A-Fa-f]{40}")


def device_id(value, raw=None):
    if not isinstance(value, str) or not _DEVICE_ID.fullmatch(value):
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
        out.append(name(item))
    return tuple(out)


MAX_CURVE_POINTS = 1000
CURVE_INPUT = number(-MAX_MAGNITUDE, MAX_MAGNITUDE)
CURVE_WATTS = number(0, MAX_WATTS, unit=" W")


def power_curve(value, raw=None):
    if not isinstance(value, list) or len(value) < 2:
        raise Invalid("expected a list of at least two [input, watts] points")
    points = []
    if len(value) > MAX_CURVE_POINTS:
        raise Invalid(f"expected at most {MAX_CURVE_POINTS} points, got {len(value)}")
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            raise Invalid(f"expected [input, watts] pairs, got {describe_value(point)}")
        try:
            x = CURVE_INPUT(point[0])
        except Invalid as e:
            raise Invalid(f"input: {e}") from None
        try:
            w = CURVE_WATTS(point[1])
        except Invalid as e:
            raise Invalid(f"watts: {e}") from None
        points.append((float(x), float(w)))
    xs = [x for x, _ in points]
    if sorted(set(xs)) != xs:
        raise Invalid("power_curve inputs must be strictly increasing")
    return points


def host(value, raw=None):
    value = plain_text(value, raw, limit=255)
    if not value or any(c.isspace() for c in value):
        raise Invalid(f"expected a host name or IP address, got {shown(value)}")
    return value


def string_map(value, raw=None):
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of names to text, got {describe_value(value)}")
    return {plain_text(k): string(v) for k, v in value.items()}
