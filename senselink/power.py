"""The power model: raw source values (states, attributes, power readings) to watts.

Every source (static, Home Assistant, MQTT, HTTP) goes through this module;
sources extract raw values and never compute watts themselves.

L{PowerModel} is the pure part: configuration and arithmetic. L{Feed} drives
one plug from one source: it applies the model, remembers what the semantics
need (on/off, the last attribute-derived watts) and reverts the plug to
C{off_usage} when no update arrived for C{timeout_duration} seconds.

Named states: C{state_power} maps state words (C{heat}, C{spin}, C{low}) to
watts, matched exactly or, with C{state_case_sensitive: false}, ignoring
case. A power reading may come in parts (L{senselink.readings}): L{Parts}
are summed, a L{Product} is current x voltage.
"""

import math
from bisect import bisect_right

from senselink.excerpt import excerpt
from senselink.log import Logger

from senselink.keypath import MISSING
from senselink.readings import Parts, Product
from senselink.statewords import StateWords, UnknownWords, folded, means

log = Logger()

DEFAULT_MAX_PLUG_WATTS = 100_000.0   # as the config's max_plug_watts


class UnreadableValue(ValueError):
    """A raw value that cannot be turned into watts (e.g. "unavailable")."""


def number(value) -> float:
    """A finite float from a JSON number or numeric text; else L{UnreadableValue}."""
    value_type = value.__class__
    if value_type is str or value_type is float or value_type is bytes or value_type is int:
        # The common types first, without isinstance (a message's hot path).
        # float() strips the same whitespace as str.strip() and bytes.strip(),
        # and also reads "1_000" and other scripts' digits ("١٢٣"): not ours.
        if (value_type is str and (not value.isascii() or "_" in value)) or (
                value_type is bytes and b"_" in value):
            raise UnreadableValue(f"{excerpt(value)} is not a plain decimal number")
        try:
            result = float(value)
        except ValueError:
            raise UnreadableValue(f"{excerpt(value)} is not a number") from None
        except OverflowError:     # an int beyond the float range
            raise UnreadableValue("the number is too large") from None
        if result - result != 0.0:      # inf - inf and nan - nan are nan
            raise UnreadableValue(f"{excerpt(value)} is not a finite number")
        return result
    if isinstance(value, bool) or value is None:
        raise UnreadableValue(f"{value!r} is not a number")
    for base in (str, float, bytes, int):     # subclasses, as their base type
        if isinstance(value, base):
            return number(base(value))
    raise UnreadableValue(f"{type(value).__name__} is not a number")


def sane_watts(watts: float) -> float:
    """Clamp to a finite, non-negative number of watts."""
    if not watts > 0.0:  # also catches NaN
        return 0.0
    if watts == math.inf:
        return 0.0
    return watts


def _part(value, name) -> float:
    """One part of a power reading as a finite float; L{UnreadableValue} naming the part."""
    if value is MISSING:
        raise UnreadableValue(f"{name} is missing")
    try:
        return number(value)
    except UnreadableValue as e:
        raise UnreadableValue(f"{name}: {e}") from None


class PowerModel:
    """Configuration and arithmetic that turn raw values into watts."""

    __slots__ = (
        "min_watts", "max_watts", "off_usage", "on_fraction",
        "on_state_value", "off_state_value",
        "attribute_min", "attribute_max", "power_curve", "_curve_x", "max_plug_watts",
        "state_power", "state_case_sensitive", "state_power_default", "_states",
    )

    def __init__(self, *, min_watts=0.0, max_watts=0.0, off_usage=None, on_fraction=1.0,
                 on_state_value=None, off_state_value="off",
                 attribute_min=0.0, attribute_max=None, power_curve=None,
                 max_plug_watts=DEFAULT_MAX_PLUG_WATTS,
                 state_power=None, state_case_sensitive=True, state_power_default=None):
        self.min_watts = float(min_watts)
        self.max_watts = float(max_watts)
        self.off_usage = self.min_watts if off_usage is None else float(off_usage)
        self.on_fraction = float(on_fraction)
        self.on_state_value = on_state_value
        self.off_state_value = off_state_value
        self.max_plug_watts = float(max_plug_watts)   # readings above are refused
        self.attribute_min = float(attribute_min)
        self.attribute_max = None if attribute_max is None else float(attribute_max)
        if power_curve:
            points = sorted((float(x), float(w)) for x, w in power_curve)
            self.power_curve = points
            self._curve_x = [x for x, _ in points]
        else:
            self.power_curve = None
            self._curve_x = None
        self.state_case_sensitive = bool(state_case_sensitive)
        self.state_power_default = (None if state_power_default is None
                                    else sane_watts(float(state_power_default)))
        if state_power:
            self.state_power = {str(word): sane_watts(float(watts))
                                for word, watts in state_power.items()}
            self._states = StateWords(self.state_power, self.state_case_sensitive)
        else:
            self.state_power = None
            self._states = None

    @classmethod
    def from_settings(cls, settings, max_plug_watts=DEFAULT_MAX_PLUG_WATTS,
                      **defaults) -> "PowerModel":
        """Build a model from a plug's typed settings: what its C{model_arguments()} give
        (a C{PowerSettings}: the watts; a C{ModelSettings}: states, attribute and curve
        too); C{defaults} for what a kind leaves unset."""
        given = {key: value for key, value in settings.model_arguments().items()
                 if value is not None}
        return cls(**{**defaults, **given, "max_plug_watts": max_plug_watts})

    def static_watts(self) -> float:
        """C{min_watts + on_fraction * (max_watts - min_watts)}, the static plug's power."""
        return sane_watts(self.min_watts + self.on_fraction * (self.max_watts - self.min_watts))

    def is_off(self, state) -> bool:
        word = self.off_state_value
        return means(state, word) or (not self.state_case_sensitive and folded(state, word))

    def is_on(self, state) -> bool:
        word = self.on_state_value
        return means(state, word) or (not self.state_case_sensitive and folded(state, word))

    def state_watts(self, state):
        """The watts C{state_power} gives C{state}; None without state_power or for a word it lacks."""
        states = self._states
        return None if states is None else states.watts(state)

    def reading(self, value) -> float:
        """The watts of a power reading: one value (L{direct}), L{Parts} or a L{Product}."""
        value_type = value.__class__
        if value_type is Parts:
            return self.summed(value)
        if value_type is Product:
            return self.product(value)
        return self.direct(value)

    def summed(self, parts) -> float:
        """The sum of a reading's parts (phases, channels); a negative total counts as 0.

        A part that is missing or not a number makes the whole reading unreadable.
        """
        total = 0.0
        for index, value in enumerate(parts.values):
            total += _part(value, parts.name(index))
        if total - total != 0.0:        # two huge parts: inf (or nan)
            raise UnreadableValue("the sum of the power parts is not a finite number")
        return total if total > 0.0 else 0.0

    def product(self, reading) -> float:
        """Current x voltage; a negative product counts as 0."""
        current_name, voltage_name = reading.names
        watts = _part(reading.current, current_name) * _part(reading.voltage, voltage_name)
        if watts - watts != 0.0:
            raise UnreadableValue("current x voltage is not a finite number")
        return watts if watts > 0.0 else 0.0

    def direct(self, value) -> float:
        """A power reading in watts (negative readings count as 0)."""
        watts = number(value)       # finite
        return watts if watts > 0.0 else 0.0

    def scaled(self, value) -> float:
        """An attribute value clamped and mapped to watts (power curve, else linear)."""
        x = number(value)
        curve = self.power_curve
        if curve is not None:
            xs = self._curve_x
            if x <= xs[0]:
                return sane_watts(curve[0][1])
            if x >= xs[-1]:
                return sane_watts(curve[-1][1])
            i = bisect_right(xs, x)
            (x0, w0), (x1, w1) = curve[i - 1], curve[i]
            return sane_watts(w0 + (w1 - w0) * (x - x0) / (x1 - x0))
        low, high = self.attribute_min, self.attribute_max
        if high is None or high <= low:
            raise UnreadableValue("attribute_max must be above attribute_min")
        fraction = (min(max(x, low), high) - low) / (high - low)
        return sane_watts(self.min_watts + fraction * (self.max_watts - self.min_watts))


class Feed:
    """Drives one plug from one source through a L{PowerModel}.

    Sources call L{entity} (Home Assistant, HTTP: a whole object read at
    once) or L{state} / L{power} / L{attribute} (MQTT: one value per topic).
    Each raises L{UnreadableValue} and leaves the plug untouched when the
    value cannot be used. A state that C{state_power} does not know is not
    an error: it is logged once per word and reports C{state_power_default},
    or keeps the plug's value.
    """

    __slots__ = ("plug", "model", "clock", "timeout", "uses_power", "uses_attribute",
                 "_off", "_attribute_watts", "_timer", "_unknown")

    def __init__(self, plug, model: PowerModel, clock, *, timeout=None,
                 uses_power=False, uses_attribute=False):
        self.plug = plug
        self.model = model
        self.clock = clock
        self.timeout = timeout or None
        self.uses_power = uses_power
        self.uses_attribute = uses_attribute
        # The state holds the watts (off, or a state_power word): attribute
        # values are remembered, not reported.
        self._off = False
        self._attribute_watts = None
        self._timer = None
        self._unknown = None        # unknown state words logged so far

    # -- one value per message (MQTT) --

    def state(self, value):
        model = self.model
        if model.state_power is not None:
            watts = model.state_watts(value)
            if watts is not None:
                return self._named_state(value, watts)
        if model.is_off(value):
            self._off = True
            return self._set(model.off_usage, False)
        if model.is_on(value):
            self._off = False
            if self.uses_attribute and self._attribute_watts is not None:
                return self._set(self._attribute_watts, True)
            return self._set(model.max_watts, True)
        if model.state_power is not None:
            return self._unknown_state(value)
        if not self.uses_power:
            watts = model.direct(value)
            self._off = False
            return self._set(watts, watts > model.off_usage)
        raise UnreadableValue(f"state {excerpt(value)} is neither {model.on_state_value!r} "
                              f"nor {model.off_state_value!r}")

    def power(self, value):
        """A power reading: one value, L{Parts} or a L{Product}."""
        value_type = value.__class__
        if value_type is Parts or value_type is Product:
            watts = self.model.reading(value)
        else:
            watts = self.model.direct(value)
        return self._set(watts, watts > self.model.off_usage)

    def attribute(self, value):
        watts = self.model.scaled(value)
        self._attribute_watts = watts
        if self._off:
            return self._touch()
        return self._set(watts, True)

    # -- a whole object at once (Home Assistant, HTTP) --

    def entity(self, state=MISSING, attribute=MISSING, power=MISSING):
        """Apply one reading of an entity: its state and, when configured, attribute or power.

        A state in state_power wins; then the off state; then a configured
        power reading; then a configured attribute; then the on state
        (max_watts); then, with state_power, an unknown state; else a
        numeric state.
        """
        model = self.model
        if state is not MISSING and model.state_power is not None:
            watts = model.state_watts(state)
            if watts is not None:
                return self._named_state(state, watts)
        if state is not MISSING and model.is_off(state):
            self._off = True
            return self._set(model.off_usage, False)
        if self.uses_power:
            if power is MISSING:
                raise UnreadableValue("power value missing")
            return self.power(power)
        if self.uses_attribute and attribute is not MISSING and attribute is not None:
            self._off = False
            return self.attribute(attribute)
        if state is MISSING:
            raise UnreadableValue("state missing")
        if model.is_on(state):
            self._off = False
            return self._set(model.max_watts, True)
        if model.state_power is not None:
            return self._unknown_state(state)
        if self.uses_attribute:
            raise UnreadableValue(f"attribute missing and state {excerpt(state)} is not "
                                  f"{model.on_state_value!r}")
        return self.state(state)

    # -- named states --

    def _named_state(self, state, watts):
        """A state with its own watts: on unless it is the off state or draws no more than
        off_usage. Attribute values wait until the state leaves it."""
        model = self.model
        self._off = True
        return self._set(watts, not model.is_off(state) and watts > model.off_usage)

    def _unknown_state(self, state):
        """A state state_power lacks: state_power_default, else the plug keeps its value."""
        model = self.model
        default = model.state_power_default
        if self._unknown is None:
            self._unknown = UnknownWords()
        self._unknown.note(state, self.plug, model.state_power, default)
        if default is None:
            return self.plug.watts
        self._off = True
        return self._set(default, default > model.off_usage)

    # -- staleness --

    def _set(self, watts, on):
        if watts > self.model.max_plug_watts:
            raise UnreadableValue(f"{watts:g} W is above max_plug_watts "
                                  f"({self.model.max_plug_watts:g} W)")
        self.plug.set_power(watts, on)
        if self.timeout:
            self._touch()
        return watts

    def _touch(self):
        if self.timeout:
            timer = self._timer
            if timer is not None and timer.active():
                timer.reset(self.timeout)
            else:
                self._timer = self.clock.callLater(self.timeout, self._expire)

    def _expire(self):
        self._timer = None
        log.info("No update for {plug} from its {kind} source in {timeout} s: "
                 "reporting off_usage {watts} W",
                 plug=self.plug.id, kind=self.plug.kind, timeout=self.timeout,
                 watts=self.model.off_usage)
        self.plug.set_power(self.model.off_usage, False)

    def stop(self):
        """Cancel the staleness timer (the source is stopping)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
