"""Plugs from a config: L{build_plugs} at start, L{prepare_plugs} at a reload.

One factory for both. At a reload a plug whose identity (id and MAC) and
type (plain or aggregate) are unchanged stays the same object, so it keeps
its value, whatever observes it and the source feeding it. Its alias,
device id, skip_rate and voltage follow the new config; its value is reset
to the new config's starting value only when that starting value changed (a
static plug's watts, a mutable plug's C{power}). Those changes are made by
L{PlugSwap.commit}, never while the new set is prepared, and
L{PlugSwap.undo} puts back what it changed.
"""

from senselink.plugs import AggregatePlug, Plug, PlugSet

# Plug attributes that come from the config and follow it on reload. Everything
# else on a kept plug (value, observers, timers) is run-time state and stays.
CONFIG_ATTRIBUTES = ("alias", "device_id", "skip_rate", "voltage", "kind", "settable")


def _default_kinds(kinds):
    if kinds is None:
        from senselink.sources import default_kinds
        kinds = default_kinds()
    return kinds


def _plug_class(plug_config):
    return AggregatePlug if plug_config.settings.elements else Plug


def _new_plug(plug_config, clock, watts, on):
    settings = plug_config.settings
    return _plug_class(plug_config)(
        plug_config.id, alias=settings.alias, mac=settings.mac, device_id=settings.device_id,
        kind=plug_config.kind, clock=clock, skip_rate=settings.skip_rate,
        voltage=settings.voltage, watts=watts, on=on, settable=settings.settable)


def build_plugs(config, clock, kinds=None) -> PlugSet:
    """The plugs of C{config}, new objects, aggregates wired to their elements."""
    kinds = _default_kinds(kinds)
    made = {pc.id: _new_plug(pc, clock, *kinds[pc.kind].initial(pc))
            for pc in config.plugs.values()}
    for pc in config.plugs.values():
        for element in pc.settings.elements:
            made[pc.id].add(made[element])
    return PlugSet(made.values())


class PlugSwap:
    """The plugs of a new config, prepared without touching the running ones.

    C{plugs} is the new L{PlugSet}: new objects for plugs added or rebuilt, the
    running objects for plugs kept (which of them are reported is known once
    L{commit} has wired the aggregates: it makes C{plugs} anew). L{commit} gives the kept ones their new
    config attributes and starting values and wires the aggregates; L{undo}
    puts the kept ones back as they were (attributes, aggregate links, value).
    """

    def __init__(self, config, plugs, updates, resets):
        self.config = config
        self.plugs = plugs
        self.updates = updates        # [(kept plug, {attribute: new value})]
        self.resets = resets          # {plug id: (watts, on)} of kept plugs reset
        self.saved = None             # what commit changed, for undo

    def commit(self):
        """Make the kept running plugs what the new config says."""
        saved = self.saved = []
        for plug, _ in self.updates:
            saved.append((plug, {name: getattr(plug, name) for name in CONFIG_ATTRIBUTES},
                          plug.wiring(),
                          None if isinstance(plug, AggregatePlug)
                          else (plug.value, plug.updated)))
        for plug, attributes in self.updates:
            plug.configure(attributes)
        for plug in self.plugs:
            plug.unwire()
        for plug_id, (watts, on) in self.resets.items():
            self.plugs[plug_id].set_power(watts, on)
        for pc in self.config.plugs.values():
            for element in pc.settings.elements:
                self.plugs[pc.id].add(self.plugs[element])
        self.plugs = PlugSet(self.plugs)      # which plugs are reported follows the wiring

    def undo(self):
        """Put the kept plugs back as they were before L{commit}."""
        for plug, attributes, wiring, value in self.saved or ():
            plug.configure(attributes)
            plug.rewire(*wiring)
            if value is not None:
                plug.restore(*value)
        self.saved = None


def prepare_plugs(plan, config, running, clock, kinds=None) -> PlugSwap:
    """The plugs of C{config} for a reload from the L{PlugSet} C{running}, as
    L{senselink.reloadplan.plan} says: nothing running is changed before L{PlugSwap.commit}."""
    kinds = _default_kinds(kinds)
    fresh = set(plan.plugs_added + plan.plugs_rebuilt)
    resets = {change.id for change in plan.plugs_changed if change.reset}
    made, updates, reset_values = {}, [], {}
    for pc in config.plugs.values():
        watts, on = kinds[pc.kind].initial(pc)
        if pc.id in fresh:
            made[pc.id] = _new_plug(pc, clock, watts, on)
            continue
        old = made[pc.id] = running[pc.id]
        model = _new_plug(pc, clock, 0.0, None)
        updates.append((old, {name: getattr(model, name) for name in CONFIG_ATTRIBUTES}))
        if pc.id in resets:
            reset_values[pc.id] = (watts, on)
    return PlugSwap(config, PlugSet(made.values()), updates, reset_values)
