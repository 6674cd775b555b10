"""The mutable-plug API: a C{mutable} plug's power set, or the plug switched, at run time.

L{MutablePlugs.set_power} checks the value against the running config's bounds
(a finite number from 0 to C{max_plug_watts}); a plug with C{restore: true}
has its value recorded in the L{senselink.runvalues.RunValues} kept in the state
file, and C{recorded()} is called so that the file is saved soon.
"""

from senselink.excerpt import shown_name
from senselink.log import Logger
from senselink.power import UnreadableValue, number
from senselink.runvalues import restores

log = Logger()


class MutablePlugs:
    """Sets the values of the C{mutable} plugs of C{hub} (a L{senselink.plughub.PlugHub}).

    C{config()}: the running config (its C{max_plug_watts} and plug settings,
    read at each call, so that a reload's apply); C{values}: the RunValues;
    C{recorded()}: a value was recorded.
    """

    def __init__(self, hub, values, clock, config, recorded):
        self.hub = hub
        self.values = values
        self.clock = clock
        self.config = config
        self.recorded = recorded

    def mutable(self, plug_id):
        """The plug of C{plug_id}; KeyError if unknown, TypeError if it is not mutable."""
        plug = self.hub.plugs[plug_id]
        if not plug.settable:
            raise TypeError(f"plug {plug_id!r} is a {plug.kind} plug, not mutable")
        return plug

    def set_power(self, plug_id, watts, on=None):
        """Set a C{mutable} plug's power in watts (a finite number >= 0).

        Raises KeyError for an unknown plug, TypeError for a plug that is not
        mutable, ValueError for a bad value.
        """
        plug = self.mutable(plug_id)
        try:
            value = number(watts)
        except UnreadableValue as e:
            raise ValueError(str(e)) from None
        if value < 0:
            raise ValueError(f"power must not be negative, got {value!r}")
        config = self.config()
        ceiling = config.settings.max_plug_watts
        if value > ceiling:
            raise ValueError(f"power must be at most max_plug_watts ({ceiling:g} W), "
                             f"got {value:g}")
        plug.set_power(value, on)
        log.info("Mutable plug {plug} set to {watts} W", plug=shown_name(plug_id), watts=value)
        if restores(plug, config.plugs[plug_id]):
            self.values.record(plug_id, value, on, self.clock.seconds())
            self.recorded()

    def switch(self, plug_id, on: bool):
        """Switch a C{mutable} plug on or off with the power its current settings give.

        On: C{max_watts} when set, else its configured C{power}; off: C{off_usage}
        (default C{min_watts}).
        """
        self.mutable(plug_id)
        watts = self.config().plugs[plug_id].settings.switch_watts(bool(on))
        self.set_power(plug_id, watts, bool(on))
