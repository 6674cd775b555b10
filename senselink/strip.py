"""What Kasa clients see: the reported plugs as child sockets of one power strip.

Kasa clients keep one device per IP address, so the daemon shows itself to
them as one HS300-style strip (L{senselink.kasa.device.HS300Strip}). Its
children are the reported plugs, in config order: child N has the id
C{<device_id>NN} (two digits, from 00), the plug's alias, its on/off state,
power and energy counters. The Sense monitor's own request keeps its own
path: one HS110 datagram per reported plug.

Top-level config keys (declared in L{senselink.config.sections}):

    device:               # optional; identity of the strip
      alias: SenseLink    # default "SenseLink"
      mac: 53:75:31:...   # default: derived from the alias, stable
      device_id: ...      # 40 hex digits; default: derived from the MAC
    kasa_clients: true    # false: answer only the Sense request, as the original did
"""

from senselink.kasa.device import ChildState, HS300Strip, StripChildren, local_now


class ReportedChildren(StripChildren):
    """The reported plugs as the strip's children, read at each request.

    C{hub} (a L{senselink.plughub.PlugHub}) is read at each request, so that a
    reload's new plugs show at once; C{meter} (an
    L{senselink.energy.counters.EnergyMeter}) gives their energy.
    """

    def __init__(self, hub, meter, clock, tz=None):
        self.hub = hub
        self.meter = meter
        self.clock = clock
        self.tz = tz

    def children(self):
        now = self.clock.seconds()
        meter = self.meter
        out = []
        for plug in self.hub.plugs.reported:
            energy = meter.get(plug.id)
            out.append(ChildState(
                plug.alias, plug.on, plug.watts, plug.voltage,
                energy.on_time(now) if energy is not None else 0,
                energy.total_kwh if energy is not None else 0.0))
        return out

    def _energy(self, index):
        plug = self.hub.plugs.reported[index]
        energy = self.meter.get(plug.id)
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


def make_strip(settings, hub, meter, clock, tz=None) -> HS300Strip:
    """The strip of C{settings} (a C{DaemonSettings}: its C{device} identity)."""
    ident = settings.device
    return HS300Strip(ReportedChildren(hub, meter, clock, tz), alias=ident.alias, mac=ident.mac,
                       device_id=ident.device_id)
