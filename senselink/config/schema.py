"""The config's keys: top-level sections, the keys every plug accepts, and the power
model's keys with their cross-key rules.

Each source kind adds its own source and plug keys (L{SourceKind.source_fields},
L{SourceKind.plug_fields}); the keys here are the same for all of them.
"""

from dataclasses import dataclass
from types import MappingProxyType

from senselink.config import sections
from senselink.config.publish import PUBLISH
from senselink.config.fields import (MAX_MAGNITUDE, MAX_WATTS, Field, alias, boolean, device_id,
                                     host, integer, keypath, keypath_list, mac, number,
                                     power_curve, shown, state_power, state_value)
from senselink.config.settings import declared, field_table, setting

WATTS = number(0, MAX_WATTS, unit=" W")


@dataclass(frozen=True)
class PlugSettings:
    """The keys every plug accepts; a kind's settings class extends it.

    Class attributes (not config keys) say what a plug of the kind is:
    C{settable}, its value is set at run time through the daemon's API (a
    kind's class then implements C{switch_watts(on)}); C{elements}, the ids of
    the plugs it sums (an aggregate's key; none for others).
    """

    settable = False
    elements = ()

    alias: str = setting(alias, doc="Name Sense shows (default: the plug id)")
    mac: str = setting(mac, doc="MAC address (default: derived from the plug id, stable)")
    device_id: str = setting(device_id, doc="40 hex digits (default: derived from the MAC)")
    skip_rate: int = setting(integer(0, 1000), default=0,
                             doc="Answer one Sense request, then skip this many")
    voltage: float = setting(number(1, 1000, unit=" V"), default=120.0,
                             doc="Volts reported (current = power / voltage)")


@dataclass(frozen=True)
class PowerSettings(PlugSettings):
    """Keys every source kind of the original accepted on plugs (its DataSource base class)."""

    min_watts: float = setting(WATTS, default=0.0, doc="Watts at the lowest setting")
    max_watts: float = setting(WATTS, default=0.0, doc="Watts when fully on")
    off_usage: float = setting(WATTS, doc="Watts when off (default: min_watts)")
    on_fraction: float = setting(number(0, 1), default=1.0,
                                 doc="Static plugs: fraction of the min..max range drawn")

    def model_arguments(self) -> dict:
        """What the power model (L{senselink.power.PowerModel}) is built from."""
        return {"min_watts": self.min_watts, "max_watts": self.max_watts,
                "off_usage": self.off_usage, "on_fraction": self.on_fraction}


@dataclass(frozen=True)
class ModelSettings(PowerSettings):
    """Keys of plugs whose value comes from a state, attribute or power reading."""

    attribute_min: float = setting(number(-MAX_MAGNITUDE, MAX_MAGNITUDE), default=0.0,
                                   doc="Attribute value that means min_watts")
    attribute_max: float = setting(number(-MAX_MAGNITUDE, MAX_MAGNITUDE),
                                   doc="Attribute value that means max_watts")
    power_curve: tuple = setting(power_curve,
                                 doc="[[input, watts], ...] interpolated piecewise-linearly")
    on_state_value: str = setting(state_value, doc="State that means on")
    off_state_value: str = setting(state_value, default="off", doc="State that means off")
    timeout_duration: float = setting(number(1, 7 * 86400, unit=" s"),
                                      doc="Seconds without update before off_usage")
    state_power: dict = setting(state_power, doc="{state: watts}, e.g. {heat: 1800, idle: 4}")
    state_case_sensitive: bool = setting(boolean, default=True,
                                         doc="false: state words match ignoring case")
    state_power_default: float = setting(WATTS, doc="Watts of a state not in state_power "
                                                    "(default: keep the last value)")

    def model_arguments(self) -> dict:
        return {**super().model_arguments(),
                "attribute_min": self.attribute_min, "attribute_max": self.attribute_max,
                "power_curve": self.power_curve, "on_state_value": self.on_state_value,
                "off_state_value": self.off_state_value, "state_power": self.state_power,
                "state_case_sensitive": self.state_case_sensitive,
                "state_power_default": self.state_power_default}


@dataclass(frozen=True)
class ReadingSettings:
    """Keys of a reading in parts (L{senselink.readings.PowerPaths}), for kinds that read
    JSON documents; L{check_power_paths} says which combinations are allowed."""

    power_keypaths: tuple = setting(keypath_list, doc="Keypaths of power readings in watts, "
                                                      "summed (phases, channels)")
    current_keypath: str = setting(keypath, doc="Keypath of a current in A (with "
                                                "voltage_keypath)")
    voltage_keypath: str = setting(keypath, doc="Keypath of a voltage in V: watts = A x V")


PLUG_FIELDS = field_table(PlugSettings)
POWER_FIELDS = field_table(PowerSettings, besides=PlugSettings)
MODEL_FIELDS = field_table(ModelSettings, besides=PlugSettings)
READING_FIELDS = field_table(ReadingSettings)


@dataclass(frozen=True)
class DaemonSettings:
    """The top-level keys besides C{sources}: one typed value each (see L{sections})."""

    target: str = setting(host, doc="Send replies to this host (at the requester's port)")
    allow_from: tuple = declared(sections.ALLOW_FROM)
    rate_limit: object = declared(sections.RATE_LIMIT)
    web: object = declared(sections.WEB)
    publish: object = declared(PUBLISH)
    device: object = declared(sections.DEVICE)
    kasa_clients: bool = declared(sections.KASA_CLIENTS)
    state_file: object = declared(sections.STATE_FILE)
    state_save_interval: float = declared(sections.STATE_SAVE_INTERVAL)
    max_plug_watts: float = declared(sections.MAX_PLUG_WATTS)


TOP_LEVEL = MappingProxyType({
    "sources": Field(None, required=True, doc="List of sources, each with its plugs"),
    **field_table(DaemonSettings),
})


# Keys, of any kind, that read measured watts: state_power gives watts by state instead.
MEASURED_POWER_KEYS = ("power_keypath", "power_keypaths", "current_keypath", "power_topic")


def check_states(written, options, where):
    """The cross-key rules of C{state_power}, for a plug with the model keys.

    @param written: the plug's settings as written (which keys it has, and their lines).
    @param options: the validated settings.
    @param where: the context of the plug's settings.
    """
    words = options.get("state_power")
    if words is None:
        if options.get("state_power_default") is not None:
            where.at(written, "state_power_default").error(
                "state_power_default needs state_power (the watts of the known states)")
        return
    here = where.at(written, "state_power")
    sensitive = options.get("state_case_sensitive") is not False
    fold = str if sensitive else str.casefold
    folded = {}
    for word in words:
        other = folded.setdefault(fold(word), word)
        if other != word:
            here.error(f"states {shown(other)} and {shown(word)} are the same word "
                       f"with state_case_sensitive: false")
    for key in ("on_state_value", "off_state_value"):
        value = options.get(key)
        if key in written and value is not None and fold(value) in folded:
            where.at(written, key).error(
                f"{key} {shown(value)} is also in state_power (line {here.line}): "
                f"give that state's watts in one place")
    for key in MEASURED_POWER_KEYS:
        if options.get(key) is not None:
            where.at(written, key).error(
                f"state_power gives watts by state: it cannot be combined with {key}, "
                f"which reads measured watts")


def check_ranges(written, options, where):
    """The ranges across keys, for every plug: C{attribute_max} above C{attribute_min}
    (whichever kind reads the attribute), and C{min_watts} at most C{max_watts} when
    both are written (C{max_watts} unset means "not given" to some kinds).

    @param written: the plug's settings as written; C{options}: the validated ones.
    """
    high, low = options.get("attribute_max"), options.get("attribute_min")
    if high is not None and low is not None and high <= low:
        where.at(written, "attribute_max").error(
            f"attribute_max ({high:g}) must be above attribute_min ({low:g})")
    if "min_watts" in written and "max_watts" in written:
        low, high = options.get("min_watts"), options.get("max_watts")
        if low is not None and high is not None and low > high:
            where.at(written, "min_watts").error(
                f"min_watts ({low:g} W) is above max_watts ({high:g} W)")


def check_power_paths(settings, where, single="power_keypath"):
    """One way of reading measured watts: C{single}, C{power_keypaths} or current x voltage.

    @param settings: the plug's typed settings (with L{ReadingSettings} and the
        attribute named C{single}, the kind's key of one keypath).
    @return: the keys of the ways given (empty: none).
    """
    ways = {single: getattr(settings, single), "power_keypaths": settings.power_keypaths,
            "current_keypath": settings.current_keypath}
    given = [key for key, value in ways.items() if value is not None]
    if len(given) > 1:
        where.error(f"{' and '.join(given)} exclude each other: give one way to read the watts")
    if (settings.current_keypath is None) != (settings.voltage_keypath is None):
        where.error("current_keypath and voltage_keypath go together (watts = current x voltage)")
    if settings.voltage_keypath is not None and "current_keypath" not in given:
        given.append("voltage_keypath")
    return given
