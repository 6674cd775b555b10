"""Power readings in parts, and where a plug's reading is in a JSON document.

A meter may report its power in parts: phases or channels (L{Parts}, whose
sum is the watts) or a current and a voltage (L{Product}). L{PowerPaths}
looks a plug's reading up with keypaths; the power model
(L{senselink.power}) turns it into watts. Nothing here computes watts.
"""

from senselink.keypath import lookup, split


class Parts:
    """A power reading in parts (phases, channels of one meter): their sum is the watts.

    C{names} labels the parts for messages (e.g. C{"power part 'ENERGY/Power/1'"}).
    """

    __slots__ = ("values", "names")

    def __init__(self, values, names=None):
        self.values = tuple(values)
        self.names = names

    def __repr__(self):
        return f"Parts({list(self.values)!r})"

    def name(self, index) -> str:
        if self.names is not None:
            return self.names[index]
        return f"power part {index + 1} of {len(self.values)}"


class Product:
    """A current in amperes and a voltage in volts: their product is the watts."""

    __slots__ = ("current", "voltage", "names")

    def __init__(self, current, voltage, names=("current", "voltage")):
        self.current = current
        self.voltage = voltage
        self.names = names

    def __repr__(self):
        return f"Product({self.current!r}, {self.voltage!r})"


class PowerPaths:
    """Where one plug's power reading is in a JSON document (a body, a state object, a payload).

    One keypath (the value is the watts), several (L{Parts}, summed) or a
    current and a voltage keypath (a L{Product}). L{read} only looks the
    values up; the power model turns them into watts.
    """

    __slots__ = ("single", "parts", "current", "voltage", "names")

    def __init__(self, single=None, parts=None, current=None, voltage=None):
        self.single = split(single) if isinstance(single, str) else single
        self.parts = None if parts is None else tuple(split(p) for p in parts)
        self.current = None if current is None else split(current)
        self.voltage = None if voltage is None else split(voltage)
        if parts is not None:
            self.names = tuple(f"power part {p!r}" for p in parts)
        elif current is not None:
            self.names = (f"current {current!r}", f"voltage {voltage!r}")
        else:
            self.names = None

    @classmethod
    def from_settings(cls, settings, single="power_keypath"):
        """From a plug's typed settings: C{power_keypaths}, C{current_keypath} +
        C{voltage_keypath}, or the attribute named C{single} (one keypath; None: none);
        None when none is set."""
        if settings.power_keypaths:
            return cls(parts=settings.power_keypaths)
        if settings.current_keypath is not None and settings.voltage_keypath is not None:
            return cls(current=settings.current_keypath, voltage=settings.voltage_keypath)
        one = None if single is None else getattr(settings, single)
        return cls(single=one) if one else None

    @property
    def several(self) -> bool:
        """Whether the reading has more than one value (parts, or current and voltage)."""
        return self.single is None

    def read(self, document):
        """The raw reading in C{document}: a value (or C{MISSING}), L{Parts} or a L{Product}."""
        if self.parts is not None:
            return Parts([lookup(document, path) for path in self.parts], self.names)
        if self.current is not None:
            return Product(lookup(document, self.current), lookup(document, self.voltage),
                           self.names)
        return lookup(document, self.single)
