"""The config's keys: top-level sections, and the keys every plug accepts.

Each source kind adds its own source and plug keys (L{SourceKind.source_fields},
L{SourceKind.plug_fields}); the keys here are the same for all of them.
"""

from types import MappingProxyType

from senselink.config import sections
from senselink.config.fields import Field, alias, device_id, host, integer, mac, number, \
    power_curve, state_value

PLUG_FIELDS = MappingProxyType({
    "alias": Field(alias, doc="Name Sense shows (default: the plug id)"),
    "mac": Field(mac, doc="MAC address (default: derived from the plug id, stable)"),
    "device_id": Field(device_id, doc="40 hex digits (default: derived from the MAC)"),
    "skip_rate": Field(integer(minimum=0), default=0,
                       doc="Answer one Sense request, then skip this many"),
    "voltage": Field(number(above=0), default=120.0, doc="Volts reported (current = power / voltage)"),
})

# Keys every source kind of the original accepted on plugs (its DataSource base class).
POWER_FIELDS = MappingProxyType({
    "min_watts": Field(number(minimum=0), default=0.0, doc="Watts at the lowest setting"),
    "max_watts": Field(number(minimum=0), default=0.0, doc="Watts when fully on"),
    "off_usage": Field(number(minimum=0), doc="Watts when off (default: min_watts)"),
    "on_fraction": Field(number(minimum=0, maximum=1), default=1.0,
                         doc="Static plugs: fraction of the min..max range drawn"),
})

# Keys of plugs whose value comes from a state/attribute/power reading.
MODEL_FIELDS = MappingProxyType({
    **POWER_FIELDS,
    "attribute_min": Field(number(), default=0.0, doc="Attribute value that means min_watts"),
    "attribute_max": Field(number(), doc="Attribute value that means max_watts"),
    "power_curve": Field(power_curve, doc="[[input, watts], ...] interpolated piecewise-linearly"),
    "on_state_value": Field(state_value, doc="State that means on"),
    "off_state_value": Field(state_value, default="off", doc="State that means off"),
    "timeout_duration": Field(number(above=0), doc="Seconds without update before off_usage"),
})

TOP_LEVEL = MappingProxyType({
    "sources": Field(None, required=True, doc="List of sources, each with its plugs"),
    "target": Field(host, doc="Send replies to this host (at the requester's port)"),
    "allow_from": sections.ALLOW_FROM,
    "rate_limit": sections.RATE_LIMIT,
    "web": sections.WEB,
    "device": sections.DEVICE,
    "kasa_clients": sections.KASA_CLIENTS,
    "state_file": sections.STATE_FILE,
    "state_save_interval": sections.STATE_SAVE_INTERVAL,
    "max_plug_watts": sections.MAX_PLUG_WATTS,
})
