"""Home Assistant: plugs follow entities over Home Assistant's websocket API.

One websocket connection per C{hass} source, however many plugs it has, run
by a L{ClientService} (exponential backoff with jitter, capped at 60 s).
After authentication the client subscribes with C{subscribe_entities}
filtered to exactly the configured entity ids and keeps a local cache that
applies Home Assistant's compressed C{a}/C{c}/C{r} diffs, so keypaths see
full state objects shaped like a C{get_states} entry (C{state},
C{attributes/brightness}, ...). A server without C{subscribe_entities}
(C{unknown_command}) gets the original SenseLink way: C{subscribe_events}
(C{state_changed}) plus one C{get_states}, filtered here by entity id.

Every reading goes through the shared power model (L{senselink.power.Feed});
this package only extracts raw values. The access token never appears in a
log line, not even at DEBUG.

 - L{kind}: the C{hass} settings (L{HassSourceSettings}, L{HassPlugSettings}: each key
   declared once), their converters and checks (L{HassKind})
 - L{service}: the source service, its reconnection and its plugs (L{HassService})
 - L{protocol}: one websocket connection (Autobahn), the link of a session run
   by L{senselink.sessiondriver.SessionDriver}
 - L{session}: the conversation on one connection: authentication,
   subscription, replies by id, ping/pong, deadlines (a state machine
   without I/O: messages and the time in, outputs and the next deadline out)
 - L{events}: what a session takes besides messages, and the events it gives
 - L{cache}: the states of the configured entities, updated by the
   subscriptions' events (pure)
"""

from senselink.sources.hass.kind import HassKind
from senselink.sources.hass.service import HassService

__all__ = ("HassKind", "HassService")
