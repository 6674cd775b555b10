"""A Home Assistant websocket API server for tests, built with Autobahn.

It speaks the protocol as captured from a real Home Assistant 2024.1.6
(see the project's protocol notes): C{auth_required}, C{auth} ->
C{auth_ok}/C{auth_invalid} (then close 1000), increasing ids (C{id_reuse}),
C{invalid_format}, C{ping}/C{pong}, C{get_states}, C{subscribe_events}
(C{state_changed}), C{subscribe_entities} with compressed C{a}/C{c}/C{r}
messages (C{+}/C{-} diffs, context as a bare id or a dict, C{lu} only when
it differs from C{lc}), C{unsubscribe_events}, C{unknown_command}, and
dropping the TCP connection without a close frame (a Home Assistant
restart).

Tests set states with L{FakeHomeAssistant.set_state} (like REST
C{POST /api/states}, which replaces the attribute map) and remove them
with L{FakeHomeAssistant.remove_state}; subscribers get the same messages
Home Assistant would send.
"""

import itertools
import json
import re
import struct
import time
from datetime import datetime, timezone

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

HA_VERSION = "2024.1.6"
_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")
_ULID_CHARS = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_counter = itertools.count(1)


def _context_id():
    n = next(_counter)
    digits = []
    for _ in range(26):
        n, r = divmod(n, 32)
        digits.append(_ULID_CHARS[r])
    return "01M8B4" + "".join(reversed(digits))[6:]


def frame_header(size, opcode=1, fin=True):
    """The head of an unmasked server frame announcing C{size} bytes of payload."""
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        return struct.pack("!BB", first, size)
    if size < 65536:
        return struct.pack("!BBH", first, 126, size)
    return struct.pack("!BBQ", first, 127, size)


def _iso(timestamp):
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


class State:
    """One entity's state as Home Assistant keeps it."""

    def __init__(self, entity_id, state, attributes, last_changed, last_updated, context):
        self.entity_id = entity_id
        self.state = state
        self.attributes = attributes
        self.last_changed = last_changed
        self.last_updated = last_updated
        self.context = context

    def as_dict(self):
        """The C{get_states} / C{state_changed} shape (ISO timestamps, full context)."""
        return {"entity_id": self.entity_id, "state": self.state, "attributes": self.attributes,
                "last_changed": _iso(self.last_changed), "last_updated": _iso(self.last_updated),
                "context": dict(self.context)}

    def as_compressed(self):
        """The C{subscribe_entities} C{a} shape."""
        context = self.context
        out = {"s": self.state, "a": self.attributes,
               "c": (context["id"] if context["parent_id"] is None and context["user_id"] is None
                     else dict(context)),
               "lc": self.last_changed}
        if self.last_updated != self.last_changed:
            out["lu"] = self.last_updated
        return out


def state_diff(old, new):
    """The C{c} message for a change, as Home Assistant's C{_state_diff} builds it."""
    additions = {}
    diff = {"+": additions}
    if old.state != new.state:
        additions["s"] = new.state
    if old.last_changed != new.last_changed:
        additions["lc"] = new.last_changed
    elif old.last_updated != new.last_updated:
        additions["lu"] = new.last_updated
    oc, nc = old.context, new.context
    if oc["parent_id"] != nc["parent_id"]:
        additions["c"] = {"parent_id": nc["parent_id"]}
    if oc["user_id"] != nc["user_id"]:
        if "c" in additions:
            additions["c"]["user_id"] = nc["user_id"]
        else:
            additions["c"] = {"user_id": nc["user_id"]}
    if oc["id"] != nc["id"]:
        if "c" in additions:
            additions["c"]["id"] = nc["id"]
        else:
            additions["c"] = nc["id"]
    if old.attributes != new.attributes:
        for key, value in new.attributes.items():
            if old.attributes.get(key) != value:
                additions.setdefault("a", {})[key] = value
        removed = [key for key in old.attributes if key not in new.attributes]
        if removed:
            diff["-"] = {"a": removed}
    return {"c": {new.entity_id: diff}}


class HomeAssistantProtocol(WebSocketServerProtocol):

    def onConnect(self, request):
        self.home = self.factory.home
        self.authenticated = False
        self.last_id = 0
        self.entity_subscriptions = {}   # subscription id -> set of entity ids or None (all)
        self.event_subscriptions = {}    # subscription id -> event_type or None
        self.received = []
        self.sent = 0                    # messages sent on this connection
        return None

    def onOpen(self):
        self.home.connections.append(self)
        if self.home.greet:
            self.send({"type": "auth_required", "ha_version": self.home.version})

    def connectionLost(self, reason):
        super().connectionLost(reason)
        home = self.factory.home
        if self in home.connections:
            home.connections.remove(self)
            home.closed.append(self)
        home._notify()

    def send(self, message):
        self.sent += 1
        self.sendMessage(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def send_text(self, text):
        """One text message as it is (not JSON, deep JSON, ...)."""
        self.sent += 1
        self.sendMessage(text.encode("utf-8") if isinstance(text, str) else text)

    def write_raw(self, data):
        """Bytes straight to the socket: a frame begun and never finished, ..."""
        self.transport.write(data)

    def result(self, mid, result=None):
        self.send({"id": mid, "type": "result", "success": True, "result": result})

    def error(self, mid, code, message):
        self.send({"id": mid, "type": "result", "success": False,
                   "error": {"code": code, "message": message}})

    def onMessage(self, payload, isBinary):
        try:
            message = json.loads(payload)
        except ValueError:
            self.sendClose(1000)
            return
        if not self.authenticated:
            self.home.auth_messages.append(message)
            if (isinstance(message, dict) and message.get("type") == "auth"
                    and message.get("access_token") == self.home.token):
                self.authenticated = True
                self.send({"type": "auth_ok", "ha_version": self.home.version})
            else:
                self.send({"type": "auth_invalid", "message": self.home.invalid_message})
                self.sendClose(1000)
            self.home._notify()
            return
        for command in (message if isinstance(message, list) else [message]):
            self.received.append(command)
            self.home.commands.append(command)
            if self.home.before_command is not None:
                self.home.before_command(self, command)
            self.handle(command)
            if self.home.after_command is not None:
                self.home.after_command(self, command)
        self.home._notify()

    def handle(self, command):
        mid = command.get("id") if isinstance(command, dict) else None
        if not isinstance(mid, int) or isinstance(mid, bool) or "type" not in command:
            self.send({"id": None, "type": "result", "success": False,
                       "error": {"code": "invalid_format", "message": "Message incorrectly formatted."}})
            return
        if mid <= self.last_id:
            self.error(mid, "id_reuse", "Identifier values have to increase.")
            return
        self.last_id = mid
        kind = command["type"]
        home = self.home
        if kind == "ping":
            if home.answer_pings:
                self.send({"id": mid, "type": "pong"})
        elif kind == "get_states":
            self.result(mid, [s.as_dict() for s in home.states.values()])
        elif kind == "subscribe_events":
            self.event_subscriptions[mid] = command.get("event_type")
            self.result(mid)
        elif kind == "subscribe_entities" and home.supports_subscribe_entities:
            ids = command.get("entity_ids")
            if isinstance(ids, str):
                ids = [part.strip() for part in ids.split(",")]
            if ids is not None:
                bad = [i for i in ids if not isinstance(i, str) or not _ENTITY_ID.match(i)]
                if bad or not isinstance(ids, list):
                    self.error(mid, "invalid_format",
                               f"Entity ID {bad[0] if bad else ids} is an invalid entity ID for "
                               f"dictionary value @ data['entity_ids']. Got {ids!r}")
                    return
                ids = set(ids)
            self.entity_subscriptions[mid] = ids
            self.result(mid)
            if not home.filter_entities:
                ids = None       # a misbehaving server: every entity it has
            self.send({"id": mid, "type": "event", "event": {"a": {
                eid: s.as_compressed() for eid, s in home.states.items()
                if ids is None or eid in ids}}})
        elif kind == "unsubscribe_events":
            sub = command.get("subscription")
            if self.entity_subscriptions.pop(sub, 0) == 0 and self.event_subscriptions.pop(sub, 0) == 0:
                self.error(mid, "not_found", "Subscription not found.")
            else:
                self.result(mid)
        else:
            self.error(mid, "unknown_command", "Unknown command.")

    # -- pushed by the home --

    def entities_event(self, eid, message):
        for sid, ids in self.entity_subscriptions.items():
            if ids is None or eid in ids:
                self.send({"type": "event", "event": message, "id": sid})

    def state_changed(self, eid, old, new, fired, context):
        data = {"entity_id": eid, "old_state": old.as_dict() if old else None,
                "new_state": new.as_dict() if new else None}
        for sid, event_type in self.event_subscriptions.items():
            if event_type in (None, "state_changed"):
                self.send({"type": "event", "event": {
                    "event_type": "state_changed", "data": data, "origin": "LOCAL",
                    "time_fired": _iso(fired), "context": dict(context)}, "id": sid})


class FakeHomeAssistant:
    """The state machine and the listening websocket server.

    C{token}: the only accepted access token. C{supports_subscribe_entities}
    False makes C{subscribe_entities} an C{unknown_command} (older Home
    Assistant). C{answer_pings} False leaves pings unanswered; C{greet} False
    never sends C{auth_required}. To misbehave: C{version} and
    C{invalid_message} are the text of C{ha_version} and of C{auth_invalid};
    C{filter_entities} False sends every state in the first
    C{subscribe_entities} event; C{after_command(protocol, command)} runs
    after each reply; L{HomeAssistantProtocol.send_text} and C{write_raw}
    send anything at all.
    """

    def __init__(self, token="secret-token", *, supports_subscribe_entities=True, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.token = token
        self.supports_subscribe_entities = supports_subscribe_entities
        self.answer_pings = True
        self.greet = True           # False: never send auth_required (a hung server)
        self.before_command = None  # callable(protocol, command), run before each reply
        self.after_command = None   # callable(protocol, command), run after each reply
        self.version = HA_VERSION
        self.invalid_message = "Invalid access token or password"
        self.filter_entities = True
        self.states = {}
        self.connections = []     # open, protocol objects
        self.closed = []          # protocols whose connection ended
        self.auth_messages = []   # everything received before auth (tests check the token flow)
        self.commands = []        # every command after auth, in order
        self.port = None
        self._waiters = []
        self.factory = WebSocketServerFactory(reactor=reactor)
        self.factory.protocol = HomeAssistantProtocol
        self.factory.home = self
        self.factory.setProtocolOptions(openHandshakeTimeout=0, closeHandshakeTimeout=0)

    # -- listening --

    def listen(self, port=0, tls=None):
        """Listen on 127.0.0.1 (port 0: a free one); returns the port number.

        C{tls}: a server context factory (e.g. L{twisted.internet.ssl.CertificateOptions})
        to serve wss:// instead of ws://.
        """
        if tls is None:
            self.port = self.reactor.listenTCP(port, self.factory, interface="127.0.0.1")
        else:
            self.port = self.reactor.listenSSL(port, self.factory, tls, interface="127.0.0.1")
        self.scheme = "ws" if tls is None else "wss"
        return self.port.getHost().port

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port.getHost().port}/api/websocket"

    def drop_connections(self):
        """End every connection without a close frame, as a stopping Home Assistant does."""
        for proto in list(self.connections):
            proto.transport.abortConnection()

    def stop(self):
        """Stop listening and drop all connections; a Deferred firing when the port is closed."""
        self.drop_connections()
        port, self.port = self.port, None
        return port.stopListening()

    # -- state machine --

    def set_state(self, entity_id, state, attributes=None, *, user_id=None, parent_id=None,
                  force_update=False):
        """Set an entity's state and attributes (attributes are replaced, as REST does)."""
        now = time.time()
        attributes = dict(attributes or {})
        old = self.states.get(entity_id)
        if old is not None and old.state == state and old.attributes == attributes \
                and not force_update:
            return False
        context = {"id": _context_id(), "parent_id": parent_id, "user_id": user_id}
        last_changed = now if old is None or old.state != state else old.last_changed
        new = State(entity_id, str(state), attributes, last_changed, now, context)
        self.states[entity_id] = new
        message = ({"a": {entity_id: new.as_compressed()}} if old is None
                   else state_diff(old, new))
        for proto in list(self.connections):
            proto.entities_event(entity_id, message)
            proto.state_changed(entity_id, old, new, now, context)
        return True

    def remove_state(self, entity_id):
        old = self.states.pop(entity_id, None)
        if old is None:
            return False
        context = {"id": _context_id(), "parent_id": None, "user_id": None}
        for proto in list(self.connections):
            proto.entities_event(entity_id, {"r": [entity_id]})
            proto.state_changed(entity_id, old, None, time.time(), context)
        return True

    # -- waiting (tests) --

    def _notify(self):
        waiters, self._waiters = self._waiters, []
        for predicate, d in waiters:
            if d.called:
                continue
            if predicate():
                d.callback(None)
            else:
                self._waiters.append((predicate, d))

    def when(self, predicate, timeout=10.0):
        """A Deferred firing once C{predicate()} is true after some server activity."""
        from twisted.internet import defer
        if predicate():
            return defer.succeed(None)
        d = defer.Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(timeout, self.reactor)


def start_hass_source(testcase, text, clock, **kwargs):
    """The plugs and the started hass source service of the config C{text} (its first
    source), on C{clock} and the real reactor; stopped when the test ends."""
    from twisted.internet import reactor

    from senselink.config import load_text
    from senselink.plugbuilder import build_plugs
    from senselink.sources.hass import HassService
    config = load_text(text, "test.yml")
    plugs = build_plugs(config, clock)
    kwargs.setdefault("random", lambda: 0.5)
    service = HassService(config.sources[0], plugs, clock, reactor=reactor, **kwargs)
    service.startService()
    testcase.addCleanup(lambda: service.stopService() if service.running else None)
    return plugs, service
