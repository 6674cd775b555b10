"""How a Home Assistant session follows its entities: L{Following}.

C{subscribe_entities} filtered to the configured entities; on a server that
does not know it, C{subscribe_events} for C{state_changed} and one
C{get_states}. Each event updates the session's L{EntityCache} (the
configured entities only) and becomes an L{EntityChanged} for the service;
entities Home Assistant does not have are named once (L{MissingEntities}).

Pure, like the session it serves: it speaks through the session's public
calls (C{command}, C{emit}, C{complain}, C{fatal}, C{became_ready}) and its
C{subscriptions} (subscription id -> handler).
"""

from senselink.sources.hass.events import EntityChanged, Info, MissingEntities
from senselink.sources.hass.messages import error_text, shown


class Following:
    """The subscription of one session and what its events change."""

    def __init__(self, session, entities):
        """
        @param session: the L{senselink.sources.hass.session.HassSession} it serves.
        @param entities: that session's L{senselink.sources.hass.cache.EntityCache}.
        """
        self.session = session
        self.entities = entities
        self.first_event = False

    def subscribe(self, now):
        """Authenticated: subscribe to the configured entities."""
        session = self.session
        sid = session.command({"type": "subscribe_entities",
                               "entity_ids": self.entities.entity_ids}, self.subscribed)
        session.subscriptions[sid] = self.entities_event
        self.first_event = True

    # -- subscribe_entities --

    def subscribed(self, message, now):
        session = self.session
        if message.get("success") is True:
            session.emit(Info(f"subscribed to {len(self.entities.entity_ids)} entities"))
            session.became_ready()
            return
        session.subscriptions.pop(message.get("id"), None)
        error = message.get("error")
        if isinstance(error, dict) and error.get("code") == "unknown_command":
            session.emit(Info("does not know subscribe_entities: using subscribe_events "
                              "and get_states"))
            sid = session.command({"type": "subscribe_events", "event_type": "state_changed"},
                                  self.subscribed_events)
            session.subscriptions[sid] = self.state_changed
            session.command({"type": "get_states"}, self.states)
        else:
            self.refused(message, "subscribe_entities")

    def entities_event(self, event, now):
        touched, malformed = self.entities.entities_event(event)
        states = self.entities.states
        for eid in touched:
            self.session.emit(EntityChanged(eid, states.get(eid)))
        if malformed:
            parts = ", ".join(f"{key}: {type(event[key]).__name__}" for key in ("a", "c", "r")
                              if key in event)
            self.session.complain("entities", f"sent an entities event of a shape Home "
                                  f"Assistant never sends ({parts}); skipped what is "
                                  f"misshapen", now)
        if self.first_event:
            self.first_event = False
            self.missing()

    def missing(self):
        missing = self.entities.missing()
        if missing:
            self.session.emit(MissingEntities(missing))

    # -- subscribe_events + get_states --

    def subscribed_events(self, message, now):
        if message.get("success") is not True:
            self.refused(message, "subscribe_events")

    def state_changed(self, event, now):
        eid = self.entities.state_changed(event)
        if eid is not None:
            self.session.emit(EntityChanged(eid, self.entities.states.get(eid)))

    def states(self, message, now):
        result = message.get("result")
        if message.get("success") is not True or not isinstance(result, list):
            self.refused(message, "get_states")
            return
        for eid in self.entities.all_states(result):
            self.session.emit(EntityChanged(eid, self.entities.states[eid]))
        self.session.emit(Info(f"sent {len(result)} entity states"))
        self.missing()
        self.session.became_ready()

    def refused(self, message, what):
        self.session.fatal(f"refused {what} (id {shown(message.get('id'))}): "
                           f"{error_text(message)}; reconnecting", level="error")
