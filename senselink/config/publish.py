"""The C{publish} section: each plug's watts and kWh to an MQTT broker, with Home
Assistant discovery (L{PublishSettings}, read by L{senselink.publish}).

The broker's keys are L{BrokerSettings}'; the section adds where the messages go
(topic and discovery prefixes), which plugs, and how often.
"""

from dataclasses import dataclass

from senselink.config.broker import BrokerSettings, mqtt_text
from senselink.config.fields import Field, Invalid, boolean, describe_value, id_list, number, shown
from senselink.config.settings import field_table, setting

DEFAULT_TOPIC_PREFIX = "senselink"
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
MAX_PREFIX = 200            # characters of a topic or discovery prefix


def topic_levels(value, raw=None):
    """Topic levels to put before ours: no wildcards, no empty level, not a C{$} topic."""
    value = mqtt_text("topic prefix", limit=MAX_PREFIX)(value, raw)
    if not value or "+" in value or "#" in value or value.startswith("$") \
            or "" in value.split("/"):
        raise Invalid(f"expected topic levels such as senselink or home/senselink (no +, #, "
                      f"leading $, empty level or leading/trailing /), got {shown(value)}")
    return value


@dataclass(frozen=True)
class PublishSettings(BrokerSettings):
    """The keys of the C{publish} section."""

    topic_prefix: str = setting(topic_levels, default=DEFAULT_TOPIC_PREFIX,
                                doc="First topic levels of the state and status topics")
    discovery: bool = setting(boolean, default=True,
                              doc="Publish Home Assistant MQTT discovery configs")
    discovery_prefix: str = setting(topic_levels, default=DEFAULT_DISCOVERY_PREFIX,
                                    doc="Home Assistant's discovery prefix")
    plugs: tuple = setting(id_list, doc="Plug ids to publish (default: every plug Sense "
                                        "sees, aggregates included)")
    min_interval: float = setting(number(0.1, 3600, unit=" s"), default=1.0,
                                  doc="Seconds between two watts messages of a plug, at least")
    max_interval: float = setting(number(1, 86400, unit=" s"), default=60.0,
                                  doc="Seconds between two watts messages of a plug, at most "
                                      "(sent again unchanged)")
    energy_interval: float = setting(number(1, 86400, unit=" s"), default=60.0,
                                     doc="Seconds between kWh messages (and one at stop)")


PUBLISH_FIELDS = field_table(PublishSettings)


def publish_section(value, raw=None):
    """The C{publish} mapping as L{PublishSettings}; a problem names its key (and line)."""
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping with host (and port, username, ...), got "
                      f"{describe_value(value)}")
    raws = getattr(value, "raw", {})
    out = {}
    for key, item in value.items():
        spec = PUBLISH_FIELDS.get(key)
        if spec is None:
            raise Invalid(f"unknown publish key {shown(key)}; known keys: "
                          f"{', '.join(PUBLISH_FIELDS)}", key=key)
        if item is not None:
            try:
                out[key] = spec.convert(item, raws.get(key))
            except Invalid as e:
                raise Invalid(str(e), key=key) from None
    if "host" not in out:
        raise Invalid("missing required key 'host' (the MQTT broker to publish to)")
    settings = PublishSettings(**out)
    if settings.max_interval < settings.min_interval:
        raise Invalid(f"max_interval ({settings.max_interval:g} s) is below min_interval "
                      f"({settings.min_interval:g} s)", key="max_interval")
    return settings


PUBLISH = Field(publish_section, doc="Publish each plug's watts and kWh over MQTT, with "
                                     "Home Assistant discovery", secret=True,
                secret_keys=("password",))


def check_publish(written, settings, plugs, where):
    """Every plug id the C{publish} section names is a plug of the config.

    @param written: the section as written; C{settings}: its L{PublishSettings} (or None).
    """
    if settings is None or settings.plugs is None:
        return
    for plug_id in settings.plugs:
        if plug_id not in plugs:
            where.at(written, "plugs").error(f"{shown(plug_id)} is not a plug of this config")
