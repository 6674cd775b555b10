"""The scalar types of the config: numbers and text, each with its bounds declared.

A number converter (L{Bounded}) cannot be declared without its range; text
(L{plain_text}) is valid Unicode of bounded length that YAML read as text, with
C{${NAME}} references substituted; a L{name} (alias, plug id) also has no
control characters and is not blank. L{Invalid} is what every converter raises.
"""

import math
import os
import re

from senselink.excerpt import MAX_SHOWN, clip


class Invalid(ValueError):
    """Raised by field types; the message says what was expected.

    C{key}: the key inside a mapping value that is at fault (the error then
    names its line), or None.
    """

    def __init__(self, message, key=None):
        super().__init__(message)
        self.key = key


# ---------------------------------------------------------------- describing values

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(text: str) -> str:
    """Replace C{${NAME}} with the environment variable NAME.

    Every C{${} must begin such a reference (a letter or _, then letters, digits
    or _, then C{}}): C{${A:-x}}, C{${ A }}, C{${}}, C{${1A}} and an unclosed
    C{${A} are errors, never literal text.
    """
    start = text.find("${")
    while start != -1:
        if not ENV_REFERENCE.match(text, start):
            end = text.find("}", start)
            written = text[start:end + 1] if end != -1 else text[start:]
            raise Invalid(f"{clip(written)} is not a reference to an environment variable: "
                          f"write ${{NAME}}, NAME of letters, digits and _ (not starting with a "
                          f"digit)")
        start = text.find("${", start + 2)

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


def maybe_env(value):
    if isinstance(value, str) and "${" in value:
        return substitute_env(value)
    return value


# ---------------------------------------------------------------- converters


# Magnitudes a person would call sane, declared once for the converters below.
MAX_WATTS = 1e9              # one plug's watts (max_plug_watts may lower it, never raise it)
MAX_MAGNITUDE = 1e9          # attribute values and power_curve inputs
MAX_TEXT = 4096              # characters of any text setting (URLs, topics, tokens, keypaths)
MAX_NAME = 128               # characters of a name a person or Sense sees (alias, plug id)


def figure(value) -> str:
    """C{value} as a config would write it: 1000000000, 0.5, 1e-09."""
    if float(value).is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:g}"


class Bounded:
    """A number converter with its range declared: C{minimum} (or C{above}, exclusive)
    and C{maximum}, both required, so that every number a config can hold is bounded
    where its type is declared. C{unit} is said in messages (" s", " W")."""

    def __init__(self, minimum=None, maximum=None, above=None, unit="", whole=False):
        if (minimum is None) == (above is None) or maximum is None:
            raise TypeError("a number needs a maximum and one of minimum or above")
        self.minimum, self.maximum, self.above = minimum, maximum, above
        self.unit, self.whole = unit, whole

    @property
    def range(self) -> str:
        """The accepted range in words, e.g. "from 1 to 86400 s"."""
        kind = "a whole number" if self.whole else "a number"
        if self.above is not None:
            return f"{kind} above {figure(self.above)}{self.unit} and at most " \
                   f"{figure(self.maximum)}{self.unit}"
        return f"{kind} from {figure(self.minimum)} to {figure(self.maximum)}{self.unit}"

    def __call__(self, value, raw=None):
        value = maybe_env(value)
        if isinstance(value, str):
            try:
                if not value.isascii() or "_" in value:    # float() reads "1_000", "١٢٣"
                    raise ValueError
                value = float(value)
            except ValueError:
                raise Invalid(f"expected {self.range}, got {describe_value(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected {self.range}, got {describe_value(value)}")
        if isinstance(value, int) and abs(value) > 2 ** 63:
            raise Invalid(f"expected {self.range}, got a number of {len(str(abs(value)))} digits")
        if not math.isfinite(value):
            raise Invalid(f"expected {self.range} (a finite number), got {shown(value)}")
        low_ok = value > self.above if self.above is not None else value >= self.minimum
        if not low_ok or value > self.maximum:
            raise Invalid(f"expected {self.range}, got {shown(value)}")
        if self.whole:
            if value != int(value):
                raise Invalid(f"expected {self.range}, got {shown(value)}")
            return int(value)
        return float(value) + 0.0        # a float, as typed (-0.0 is 0.0)


def number(minimum=None, maximum=None, above=None, unit=""):
    """A number in a declared range (see L{Bounded}): minimum (or above) and maximum."""
    return Bounded(minimum, maximum, above, unit)


def integer(minimum=None, maximum=None, unit=""):
    """A whole number from C{minimum} to C{maximum}."""
    return Bounded(minimum, maximum, unit=unit, whole=True)


# A number that YAML read from plain text written as a number; sexagesimal (12:30:00),
# octal, hexadecimal and the like are not text a person meant as a name.
_DECIMAL = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def plain_text(value, raw=None, limit=MAX_TEXT) -> str:
    """Text as a YAML string holds it (C{${NAME}} substituted): valid Unicode of at most
    C{limit} characters. A plain decimal number is taken as the text written (an alias
    C{123}); other YAML types (dates, sets, C{!!binary}, 12:30:00 read as 45000) are
    errors that say to quote the value."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and raw is not None \
            and _DECIMAL.fullmatch(raw):
        value = raw
    elif isinstance(value, int) and not isinstance(value, bool) and raw is None:
        value = str(value)        # e.g. in a list, where the text written is not kept
    if value is None or isinstance(value, (bool, list, dict)):
        raise Invalid(f"expected text, got {describe_value(value)}")
    if not isinstance(value, str):     # a date, a set, !!binary bytes, 12:30:00 read as 45000
        written = f" (written {clip(raw)})" if raw is not None and raw != str(value) else ""
        raise Invalid(f"expected text, got {describe_value(value)}{written}; "
                      f"quote it if it is meant as text")
    if len(value) > limit:
        raise Invalid(f"expected text of at most {limit} characters, got {len(value)}")
    value = substitute_env(value)
    if len(value) > limit:
        raise Invalid(f"expected text of at most {limit} characters, got {len(value)} "
                      f"(after substituting ${{NAME}})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("expected valid Unicode text, got bytes that are not UTF-8 (an "
                      "environment variable's value, or a \\ud800-style escape)") from None
    return value


def string(value, raw=None):
    """Any text setting (see L{plain_text})."""
    return plain_text(value, raw)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def name(value, raw=None):
    """A name a person or Sense sees (an alias, a plug id): valid Unicode, no control
    characters, not blank, at most L{MAX_NAME} characters."""
    value = plain_text(value, raw, limit=MAX_NAME)
    bad = _CONTROL.search(value)
    if bad:
        raise Invalid(f"expected a name without control characters, got {shown(value)} "
                      f"(it holds {bad.group()!r})")
    if not value.strip():
        raise Invalid("expected a non-empty name")
    return value


alias = name
