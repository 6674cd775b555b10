"""Plugs from a config: at start, and again at each reload reusing the running plugs.

One factory for both: a plug whose identity (id and MAC) and type (plain or
aggregate) are unchanged stays the same object across a reload, so it keeps
its value and whatever observes it. Its alias, device id, skip_rate and
voltage follow the new config; its value is reset to the new config's
starting value only when that starting value changed (a static plug's
watts, a mutable plug's C{power}).
"""

from dataclasses import dataclass, field

from senselink.plugs import AggregatePlug, Plug, PlugSet

# Plug attributes that come from the config and follow it on reload. Everything
# else on a kept plug (value, observers, timers) is run-time state and stays.
CONFIG_ATTRIBUTES = ("alias", "device_id", "skip_rate", "voltage", "kind", "settable")


@dataclass
class PlugChanges:
    """What L{build_plugs} did with the running plugs (ids, in config order)."""
    added: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    kept: list = field(default_factory=list)
    reset: list = field(default_factory=list)     # kept, value reset from the new config
    aliases: list = field(default_factory=list)   # kept with a new alias: (id, old, new)


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


def build_plugs(config, clock, kinds=None, running=None, running_config=None,
                changes=None) -> PlugSet:
    """The plugs of C{config}, aggregates wired to their elements.

    With C{running} (the L{PlugSet} in use, built from C{running_config}),
    plugs whose identity is unchanged are reused and what happened is
    recorded in C{changes} (a L{PlugChanges}). The running set itself is not
    changed, but kept plug objects already carry their new config attributes.
    """
    kinds = _default_kinds(kinds)
    if changes is None:
        changes = PlugChanges()
    made = {}
    for pc in config.plugs.values():
        cls = _plug_class(pc)
        watts, on = kinds[pc.kind].initial(pc)
        old = running.get(pc.id) if running is not None else None
        if old is None or old.mac != pc.settings.mac.upper() or type(old) is not cls:
            made[pc.id] = _new_plug(pc, clock, watts, on)
            if running is not None:
                changes.added.append(pc.id)
            continue
        fresh = _new_plug(pc, clock, 0.0, None)
        if fresh.alias != old.alias:
            changes.aliases.append((pc.id, old.alias, fresh.alias))
        for name in CONFIG_ATTRIBUTES:
            setattr(old, name, getattr(fresh, name))
        old.aggregate = None
        if cls is AggregatePlug:
            old.elements = []
        old_pc = running_config.plugs.get(pc.id) if running_config is not None else None
        same_start = (old_pc is not None and old_pc.kind == pc.kind
                      and kinds[old_pc.kind].initial(old_pc) == (watts, on))
        if not same_start and cls is Plug:
            old.set_power(watts, on)
            changes.reset.append(pc.id)
        made[pc.id] = old
        changes.kept.append(pc.id)
    for pc in config.plugs.values():
        for element in pc.settings.elements:
            made[pc.id].add(made[element])
    if running is not None:
        changes.removed.extend(plug.id for plug in running if plug.id not in made)
    return PlugSet(made.values())
