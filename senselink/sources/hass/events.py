"""What a L{senselink.sources.hass.session.HassSession} takes besides whole messages, and
the events it gives its service. Plain values, no behaviour."""

from dataclasses import dataclass


# -- what the connection tells the session, besides whole messages --

@dataclass(frozen=True, slots=True)
class Opened:
    """The server answered the websocket upgrade: Home Assistant speaks next."""


@dataclass(frozen=True, slots=True)
class MessageBegins:
    """The first bytes of a message arrived."""


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The server announced a message of C{size} bytes, over C{limit}."""
    size: int
    limit: int


@dataclass(frozen=True, slots=True)
class Broken:
    """Autobahn fails the connection: the server broke the websocket protocol (C{reason}:
    bad UTF-8 in a text message, a fragmented control frame, ...)."""
    reason: str


OPENED = Opened()
BEGINS = MessageBegins()


# -- events for the service --

@dataclass(frozen=True, slots=True)
class Authenticated:
    version: str            # Home Assistant's version, as shown (clipped)


@dataclass(frozen=True, slots=True)
class AuthRejected:
    message: str            # the server's words, as shown (clipped)


@dataclass(frozen=True, slots=True)
class EntityChanged:
    entity_id: str
    state: object           # a get_states shaped dict; None when the entity is gone


@dataclass(frozen=True, slots=True)
class MissingEntities:
    entity_ids: tuple


@dataclass(frozen=True, slots=True)
class Ready:
    """Subscribed (and, on the old way, the states read): values flow."""


@dataclass(frozen=True, slots=True)
class Info:
    text: str               # follows "Home Assistant at <url>"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something to log: C{text} follows "Home Assistant at <url>"; C{fatal}: the
    connection is being dropped for it; C{once}: a key the service says only once
    until a session becomes ready."""
    text: str
    level: str = "warn"
    fatal: bool = False
    once: str = None
