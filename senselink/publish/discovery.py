"""What the publisher says about a plug, as topics and payloads: L{PlugTopics}. No I/O.

Values are what Sense is told (L{senselink.kasa.messages.realtime}: watts to
3 decimals, kWh to 6) as plain numbers, which is what Home Assistant reads as
a sensor state. Discovery configs follow Home Assistant's MQTT discovery and
MQTT sensor documentation (home-assistant.io/integrations/mqtt/#mqtt-discovery
and /integrations/sensor.mqtt/), field by field in L{discovery_config}.
"""

import json
import re

from senselink.kasa.messages import realtime

# A topic level Home Assistant accepts as a discovery node or object id.
TOPIC_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ONLINE, OFFLINE = b"online", b"offline"
MANUFACTURER = "SenseLink"
MODEL = "SenseLink virtual HS110"

# kind -> (the sensor's name, unit_of_measurement, device_class, state_class)
SENSORS = (("power", "Power", "W", "power", "measurement"),
           ("energy", "Energy", "kWh", "energy", "total_increasing"))


def status_topic(prefix):
    """The availability topic: C{online}, C{offline} (also the last will)."""
    return f"{prefix}/status"


def mac_digits(mac):
    """C{53:75:31:F6:4C:05} -> C{537531f64c05}: a MAC as a topic level."""
    return mac.replace(":", "").replace("-", "").lower()


def topic_id(plug):
    """The plug's level in the state topics: its id when it is a plain topic level
    (letters, digits, C{_}, C{-}), else its MAC's 12 hex digits."""
    return plug.id if TOPIC_ID.fullmatch(plug.id) else mac_digits(plug.mac)


def plain_number(value, digits):
    """C{value} to C{digits} decimals without an exponent or trailing zeros (C{1500.0},
    C{0.000009}): what Home Assistant, Node-RED and Telegraf all read as a number."""
    text = f"{value:.{digits}f}".rstrip("0")
    return (text + "0" if text.endswith(".") else text).encode("ascii")


def power_text(plug):
    """The plug's watts as Sense is told them (3 decimals), as a plain number."""
    return plain_number(realtime(plug.watts, plug.voltage)["power"], 3)


def energy_value(kwh):
    """kWh as Sense is told them (6 decimals)."""
    return realtime(0.0, 0.0, kwh)["total"]


def energy_text(kwh):
    return plain_number(kwh, 6)


class PlugTopics:
    """The topics of one plug and its discovery configs."""

    def __init__(self, plug, settings):
        self.node = f"senselink_{mac_digits(plug.mac)}"      # unique_id and device id base
        self.level = topic_id(plug)
        prefix = settings.topic_prefix
        self.status = status_topic(prefix)
        self.state = {kind: f"{prefix}/{self.level}/{kind}" for kind, *_ in SENSORS}
        discovery = settings.discovery_prefix
        self.config = {kind: f"{discovery}/sensor/{self.node}/{kind}/config"
                       for kind, *_ in SENSORS} if settings.discovery else {}

    @property
    def power(self):
        return self.state["power"]

    @property
    def energy(self):
        return self.state["energy"]

    def configs(self, plug):
        """C{{config topic: payload}} of the plug's sensors (empty without discovery)."""
        return {topic: discovery_config(self, plug, kind) for kind, topic in self.config.items()}


def discovery_config(topics, plug, kind):
    """The discovery config of the plug's C{kind} sensor (C{power} or C{energy}), as JSON bytes."""
    (_, name, unit, device_class, state_class), = [s for s in SENSORS if s[0] == kind]
    config = {
        # "name": the entity's name; with a device, the entity id is
        # sensor.<device name>_<name> (sensor.space_heater_power).
        "name": name,
        # "unique_id": without it Home Assistant drops the device block; from the
        # plug's MAC, so it outlives a new alias or plug id.
        "unique_id": f"{topics.node}_{kind}",
        # "state_topic": the only required key; its payload is a plain number.
        "state_topic": topics.state[kind],
        # "unit_of_measurement": W; kWh (the Energy dashboard takes Wh or kWh).
        "unit_of_measurement": unit,
        # "device_class": power / energy (sensor device classes).
        "device_class": device_class,
        # "state_class": measurement for watts; total_increasing for the counter,
        # which the Energy dashboard wants (a decrease is a new meter cycle).
        "state_class": state_class,
        # "availability_topic" with "payload_available"/"payload_not_available"
        # (the defaults, said out loud): the will makes it offline when we die.
        "availability_topic": topics.status,
        "payload_available": ONLINE.decode(),
        "payload_not_available": OFFLINE.decode(),
        # "device": one device per plug; "identifiers" are required for it to be
        # kept, "name" is the plug's alias (a new alias renames the device).
        "device": {
            "identifiers": [topics.node],
            "name": plug.alias,
            "manufacturer": MANUFACTURER,
            "model": MODEL,
        },
    }
    return json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
