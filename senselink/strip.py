"""What Kasa clients see: the reported plugs as child sockets of one power strip.

Kasa clients keep one device per IP address, so the daemon shows itself to
them as one HS300-style strip (L{senselink.kasa.device.StripDevice}). Its
children are the reported plugs, in config order: child N has the id
C{<device_id>NN} (two digits, from 00), the plug's alias, its on/off state,
power and energy counters. The Sense monitor's own request keeps its own
path: one HS110 datagram per reported plug.

Top-level config keys:

    device:               # optional; identity of the strip
      alias: SenseLink    # default "SenseLink"
      mac: 53:75:31:...   # default: derived from the alias, stable
      device_id: ...      # 40 hex digits; default: derived from the MAC
    kasa_clients: true    # false: answer only the Sense request, as the original did
"""

import hashlib

from senselink import config as _config
from senselink.kasa.device import ChildState, StripDevice, StripSource, local_now
from senselink.plugs import DERIVED_MAC_PREFIX, derive_device_id

DEFAULT_ALIAS = "SenseLink"


def derive_strip_mac(alias: str) -> str:
    """The strip's MAC when none is configured: derived from its alias, the same on every start."""
    digest = hashlib.sha256(b"senselink-strip:" + alias.encode("utf-8")).digest()
    return ":".join(f"{b:02X}" for b in DERIVED_MAC_PREFIX + tuple(digest[:3]))


_DEVICE_KEYS = {
    "alias": _config.string,
    "mac": _config.mac,
    "device_id": _config.device_id,
}


def device_identity(value, raw=None) -> dict:
    """The C{device:} mapping: alias, mac, device_id, with stable defaults filled in."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _config.Invalid("expected a mapping with alias, mac and/or device_id, got "
                              f"{value!r}")
    out = {}
    raws = getattr(value, "raw", {})
    for key, item in value.items():
        convert = _DEVICE_KEYS.get(key)
        if convert is None:
            raise _config.Invalid(f"unknown key {key!r}; known keys: "
                                  f"{', '.join(sorted(_DEVICE_KEYS))}")
        if item is None:
            continue
        try:
            out[key] = convert(item, raws.get(key))
        except _config.Invalid as e:
            raise _config.Invalid(f"{key}: {e}") from None
    out.setdefault("alias", DEFAULT_ALIAS)
    if not out["alias"]:
        raise _config.Invalid("alias: expected a non-empty name")
    out.setdefault("mac", derive_strip_mac(out["alias"]))
    out.setdefault("device_id", derive_device_id(out["mac"]))
    return out


_config.add_top_level("device", _config.Field(
    device_identity, default=None,
    doc="Identity of the power strip Kasa clients see: alias, mac, device_id"))
_config.add_top_level("kasa_clients", _config.Field(
    _config.boolean, default=True,
    doc="Answer Kasa clients (discovery, TCP sessions) besides the Sense request"))


def identity(config) -> dict:
    """The strip's identity from a loaded config (defaults when C{device} is absent)."""
    value = config.options.get("device")
    return value if value is not None else device_identity(None)


class PlugStrip(StripSource):
    """The reported plugs as the strip's children, read at each request.

    C{daemon} is the running daemon (its public C{plugs} and C{meter}),
    read at each request so that a reload's new plugs show at once.
    """

    def __init__(self, daemon, clock, tz=None):
        self.daemon = daemon
        self.clock = clock
        self.tz = tz

    def children(self):
        now = self.clock.seconds()
        meter = self.daemon.meter
        out = []
        for plug in self.daemon.plugs.reported:
            energy = meter.get(plug.id)
            out.append(ChildState(
                plug.alias, plug.on, plug.watts, plug.voltage,
                energy.on_time(now) if energy is not None else 0,
                energy.total_kwh if energy is not None else 0.0))
        return out

    def _energy(self, index):
        plug = self.daemon.plugs.reported[index]
        energy = self.daemon.meter.get(plug.id)
        if energy is not None:
            energy.advance()
        return energy

    def day_energy(self, index, year, month):
        energy = self._energy(index)
        return energy.day_energy(year, month) if energy is not None else []

    def month_energy(self, index, year):
        energy = self._energy(index)
        return energy.month_energy(year) if energy is not None else []

    def now(self):
        return local_now(self.clock.seconds(), self.tz)


def make_strip(config, daemon, clock, tz=None) -> StripDevice:
    ident = identity(config)
    return StripDevice(PlugStrip(daemon, clock, tz), alias=ident["alias"], mac=ident["mac"],
                       device_id=ident["device_id"])
