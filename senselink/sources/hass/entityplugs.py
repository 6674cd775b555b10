"""Which plugs follow which Home Assistant entity, and their values from its states.

L{EntityPlugs} is built from a C{hass} source's plugs: per entity id, a
L{Binding} per plug (its power model's L{senselink.power.Feed} and the
keypaths it reads). L{EntityPlugs.changed} turns a state object into each
plug's watts; problems are logged once per entity through the source's
L{senselink.sources.base.Complaints}.
"""

from senselink.excerpt import excerpt
from senselink.keypath import lookup, split
from senselink.log import Logger
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.readings import PowerPaths

log = Logger(namespace="senselink.sources.hass")


class Binding:
    """One plug's reading of one entity (the entity id is the key it is filed under)."""

    __slots__ = ("feed", "state_path", "attribute_path", "power_paths")

    def __init__(self, feed, state_path, attribute_path, power_paths):
        self.feed = feed
        self.state_path = state_path
        self.attribute_path = attribute_path
        self.power_paths = power_paths      # a PowerPaths, or None

    @property
    def plug(self):
        return self.feed.plug


def attribute_path(settings):
    if settings.attribute is not None:
        return ("attributes", settings.attribute)
    if settings.attribute_keypath is not None:
        return split(settings.attribute_keypath)
    return None


class EntityPlugs:
    """The plugs of one C{hass} source, filed by the entity each follows."""

    def __init__(self, source, plugs, clock, complaints, label):
        self.complaints = complaints
        self.label = label
        self.feeds = []
        self.bindings = {}         # entity id -> [Binding]
        for pc in source.plugs:
            ps = pc.settings
            attribute = attribute_path(ps)
            power_paths = PowerPaths.from_settings(ps)
            feed = Feed(plugs[pc.id], PowerModel.from_settings(ps, pc.max_plug_watts), clock,
                        timeout=ps.timeout_duration, uses_power=power_paths is not None,
                        uses_attribute=attribute is not None)
            self.feeds.append(feed)
            binding = Binding(feed, split(ps.state_keypath), attribute, power_paths)
            self.bindings.setdefault(ps.entity_id, []).append(binding)
        self.entity_ids = sorted(self.bindings)

    def changed(self, eid, state):
        """A state object arrived for C{eid} (None: the entity is gone).

        Problems are logged once per entity (naming every plug that follows
        it) until all its plugs read a good value again.
        """
        bindings = self.bindings.get(eid, ())
        if state is None:
            self.complaints.problem(
                eid, "Home Assistant entity {entity} is gone; {plugs} keep their last values",
                entity=eid, plugs=plug_list(bindings))
            return
        failed, done = [], []
        for b in bindings:
            kwargs = {"state": lookup(state, b.state_path)}
            if b.attribute_path is not None:
                kwargs["attribute"] = lookup(state, b.attribute_path)
            if b.power_paths is not None:
                kwargs["power"] = b.power_paths.read(state)
            try:
                watts = b.feed.entity(**kwargs)
            except UnreadableValue as e:
                failed.append(f"{b.plug.id}: {e}, keeping {b.plug.watts} W")
                continue
            done.append(f"{b.plug.id} {watts} W")
            log.debug("Plug {plug} from {entity}: {watts} W", plug=b.plug.id, entity=eid,
                      watts=watts)
        if failed:
            self.complaints.problem(
                eid, "Cannot read Home Assistant entity {entity} (state {state}): {problems}",
                entity=eid, state=excerpt(state.get("state") if isinstance(state, dict) else None),
                problems="; ".join(failed))
        else:
            self.complaints.resolved(eid, "Home Assistant entity {entity} readable again: "
                                          "{plugs}", entity=eid, plugs=", ".join(done))

    def missing(self, entity_ids):
        """Home Assistant has no state for C{entity_ids}: their plugs keep their values."""
        for eid in entity_ids:
            bindings = self.bindings.get(eid, ())
            if bindings:
                self.complaints.problem(
                    eid, "Home Assistant at {url} has no entity {entity}; {plugs} keep their "
                    "last values until it appears", url=self.label, entity=eid,
                    plugs=plug_list(bindings))


def plug_list(bindings):
    return ", ".join(f"{b.plug.id} ({b.plug.watts} W)" for b in bindings) or "no plugs"
