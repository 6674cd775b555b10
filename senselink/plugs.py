"""Virtual plugs: identity (alias, MAC, device id), current watts and on/off.

A L{Plug} holds what a source last reported and tells its observers when
that changes. An L{AggregatePlug} reports the sum of its elements; elements
of an aggregate are not reported on their own, and a change of an element is
also a change of its aggregate. Plugs know nothing of replies, energy or the
wire: the responder's reply cache and the energy meter are observers.
"""

import hashlib

# Prefix of derived MACs, as the original SenseLink used for its spoofed plugs.
DERIVED_MAC_PREFIX = (0x53, 0x75, 0x31)


def derive_mac(name: str, salt: bytes = b"senselink-plug:") -> str:
    """A MAC derived from a plug id (or, with another C{salt}, another name): the same on
    every start."""
    digest = hashlib.sha256(salt + name.encode("utf-8")).digest()
    return ":".join(f"{b:02X}" for b in DERIVED_MAC_PREFIX + tuple(digest[:3]))


def derive_device_id(mac: str) -> str:
    """A 40-hex-digit device id derived from the MAC."""
    return hashlib.sha1(b"senselink-device:" + mac.upper().encode("ascii")).hexdigest().upper()


class Plug:
    """One virtual plug as the Sense monitor sees it.

    C{observers} are callables C{observer(plug, now)} called after the plug's
    watts or on/off changed (C{now}: the clock's time of the change).
    """

    __slots__ = ("id", "alias", "mac", "device_id", "skip_rate", "voltage", "kind", "settable",
                 "aggregate", "clock", "_watts", "_on", "updated", "_skip", "observers")

    def __init__(self, plug_id, *, alias=None, mac, device_id, kind, clock,
                 skip_rate=0, voltage=120.0, watts=0.0, on=None, settable=False):
        self.id = plug_id
        self.alias = alias or plug_id
        self.mac = mac.upper()
        self.device_id = device_id.upper()
        self.kind = kind
        self.settable = settable     # its value is set at run time through the daemon's API
        self.skip_rate = skip_rate
        self.voltage = float(voltage)
        self.clock = clock
        self.aggregate = None
        self._watts = float(watts) + 0.0     # -0.0 is 0.0
        self._on = on
        self.updated = None
        self._skip = 0
        self.observers = []

    @property
    def watts(self) -> float:
        return self._watts

    @property
    def on(self) -> bool:
        """On/off as last reported; without a report, on while drawing power."""
        return self._watts > 0.0 if self._on is None else self._on

    @property
    def value(self) -> tuple:
        """C{(watts, on)} as last set (C{on} None: not reported), to set again later."""
        return self._watts, self._on

    @property
    def reported(self) -> bool:
        """Whether Sense sees this plug itself (it is not an aggregate's element)."""
        return self.aggregate is None

    def set_power(self, watts: float, on=None):
        """Record a new value from a source (watts already sane: finite, >= 0)."""
        watts += 0.0                        # -0.0 (a reading of "-0") is 0.0
        now = self.updated = self.clock.seconds()
        if watts != self._watts or on != self._on:
            self._watts = watts
            self._on = on
            self.changed(now)

    def changed(self, now=None):
        """Tell the observers of this plug, and of the aggregates holding it, of a change."""
        if now is None:
            now = self.clock.seconds()
        plug = self
        while plug is not None:
            for observer in plug.observers:
                observer(plug, now)
            plug = plug.aggregate

    def configure(self, attributes):
        """Take new config attributes (C{alias}, C{device_id}, C{skip_rate}, ...; a reload)."""
        for name, value in attributes.items():
            setattr(self, name, value)

    def wiring(self) -> tuple:
        """C{(aggregate, elements)}: the links L{unwire} drops and L{rewire} restores."""
        return self.aggregate, list(getattr(self, "elements", ()))

    def unwire(self):
        """Belong to no aggregate (and hold no elements): a reload wires them anew."""
        self.aggregate = None

    def rewire(self, aggregate, elements):
        """Links as L{wiring} gave them (a reload that did not apply)."""
        self.aggregate = aggregate

    def restore(self, value, updated):
        """Back to C{value} (C{(watts, on)}, from L{value}) as of C{updated}."""
        watts, on = value
        if self.value != (watts, on):
            self.set_power(watts, on)
        self.updated = updated

    def should_answer(self) -> bool:
        """The original's C{skip_rate}: answer one request, then skip C{skip_rate}."""
        if self._skip < 1:
            self._skip = self.skip_rate
            return True
        self._skip -= 1
        return False

    def __repr__(self):
        return f"<{type(self).__name__} {self.id!r} {self.watts} W>"


class AggregatePlug(Plug):
    """A plug whose power is the sum of its elements' power."""

    __slots__ = ("elements",)

    def __init__(self, plug_id, **kwargs):
        super().__init__(plug_id, **kwargs)
        self.elements = []

    def add(self, element: Plug):
        element.aggregate = self
        self.elements.append(element)
        self.changed()

    @property
    def watts(self) -> float:
        return sum(element.watts for element in self.elements)

    @property
    def on(self) -> bool:
        return any(element.on for element in self.elements)

    @property
    def updated(self):
        times = [e.updated for e in self.elements if e.updated is not None]
        return max(times) if times else None

    @updated.setter
    def updated(self, value):
        pass

    def unwire(self):
        super().unwire()
        self.elements = []

    def rewire(self, aggregate, elements):
        super().rewire(aggregate, elements)
        self.elements = list(elements)

    def set_power(self, watts, on=None):
        raise TypeError(f"aggregate plug {self.id!r} takes its power from its elements")


class PlugSet:
    """All plugs of a running daemon, in config order, with the reported ones listed apart.

    Immutable once built: a reload makes a new set (see L{senselink.plugbuilder}).
    """

    def __init__(self, plugs=()):
        self.by_id = {}
        for plug in plugs:
            self.by_id[plug.id] = plug
        self.reported = [p for p in self.by_id.values() if p.reported]

    def __iter__(self):
        return iter(self.by_id.values())

    def __len__(self):
        return len(self.by_id)

    def __getitem__(self, plug_id) -> Plug:
        return self.by_id[plug_id]

    def __contains__(self, plug_id):
        return plug_id in self.by_id

    def get(self, plug_id, default=None):
        return self.by_id.get(plug_id, default)
