"""The websocket connection to Home Assistant: authentication, subscription, keepalive.

One L{HassClientProtocol} per connection (Autobahn), made by
L{HassClientFactory} for a L{senselink.sources.hass.service.HassService}.
"""

import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

from senselink.log import Logger
from senselink.sources.hass.cache import apply_entities_event

log = Logger(namespace="senselink.sources.hass")


class HassClientProtocol(WebSocketClientProtocol):
    """One websocket session: auth, subscription, id-matched replies, ping/pong."""

    def connectionMade(self):
        super().connectionMade()
        service = self.factory.service
        self.service = service
        self.clock = service.clock
        self.next_id = 1
        self.pending = {}          # command id -> callable(message)
        self.subscriptions = {}    # subscription id -> callable(event)
        self.cache = {}            # entity id -> state object (get_states shape)
        self.authenticated = False
        self.ready = False
        self._ping_call = None
        self._pong_deadline = None
        # Home Assistant speaks first; a silent server is as good as a dead one.
        self._pong_deadline = self.clock.callLater(service.ping_timeout, self._silent,
                                                   "auth_required")

    def dataReceived(self, data):
        # A large message (a big get_states reply on a slow link) can take longer
        # than the ping timeout: while bytes keep arriving the server is alive.
        deadline = self._pong_deadline
        if deadline is not None and deadline.active():
            deadline.reset(self.service.ping_timeout)
        super().dataReceived(data)

    # -- sending --

    def send_json(self, message):
        self.sendMessage(json.dumps(message).encode("utf-8"))

    def command(self, message, on_reply=None):
        """Send a command with the next id; C{on_reply(message)} gets its result (or pong)."""
        cid = self.next_id
        self.next_id += 1
        message = {"id": cid, **message}
        if on_reply is not None:
            self.pending[cid] = on_reply
        self.send_json(message)
        return cid

    # -- receiving --

    def onMessage(self, payload, isBinary):
        try:
            decoded = json.loads(payload.decode("utf-8") if isBinary else payload)
        except (UnicodeDecodeError, ValueError) as e:
            log.warn("Home Assistant at {url} sent a message that is not JSON ({error}); ignored",
                     url=self.service.label, error=str(e)[:200])
            return
        messages = decoded if isinstance(decoded, list) else [decoded]
        for message in messages:
            if not isinstance(message, dict):
                log.warn("Home Assistant at {url} sent {kind} instead of a message; ignored",
                         url=self.service.label, kind=type(message).__name__)
                continue
            try:
                self.dispatch(message)
            except Exception:
                log.failure("Handling a message from Home Assistant at {url} failed",
                            url=self.service.label)

    def dispatch(self, message):
        kind = message.get("type")
        mid = message.get("id")
        if kind == "event":
            handler = self.subscriptions.get(mid)
            event = message.get("event")
            if handler is not None and isinstance(event, dict):
                handler(event)
            return
        if kind in ("result", "pong"):
            handler = self.pending.pop(mid, None)
            if handler is not None:
                handler(message)
            elif kind == "result" and not message.get("success", True):
                self.command_failed(message, "command")
            return
        if kind == "auth_required":
            self.send_auth(message)
        elif kind == "auth_ok":
            self.auth_ok(message)
        elif kind == "auth_invalid":
            self.authenticated = False
            self.service.auth_rejected(message)
            self.sendClose()
            self._cancel_deadline()
            self._pong_deadline = self.clock.callLater(self.service.ping_timeout, self._silent,
                                                       "close after auth_invalid")
        else:
            log.debug("Ignoring a {kind!r} message from Home Assistant at {url}",
                      kind=kind, url=self.service.label)

    def command_failed(self, message, what):
        error = message.get("error") or {}
        log.error("Home Assistant at {url} refused {what} (id {id}): {code}: {reason}",
                  url=self.service.label, what=what, id=message.get("id"),
                  code=error.get("code"), reason=error.get("message"))

    # -- authentication --

    def send_auth(self, message):
        self._cancel_deadline()
        try:
            token = self.service.token()
        except (OSError, ValueError, UnicodeDecodeError) as e:
            log.error("Cannot read the Home Assistant access token for {url} from its file: "
                      "{reason}", url=self.service.label,
                      reason=getattr(e, "strerror", None) or str(e))
            self.dropConnection(abort=True)
            return
        # The auth message carries the token: it is built and sent here and never logged.
        self.sendMessage(json.dumps({"type": "auth", "access_token": token}).encode("utf-8"))
        self._pong_deadline = self.clock.callLater(self.service.ping_timeout, self._silent,
                                                   "auth_ok")

    def auth_ok(self, message):
        self._cancel_deadline()
        self.authenticated = True
        self.service.authenticated(self, message.get("ha_version"))
        entity_ids = self.service.entity_ids
        sid = self.command({"type": "subscribe_entities", "entity_ids": entity_ids},
                           self._subscribed_entities)
        self.subscriptions[sid] = self._entities_event
        self._first_event = True
        self._schedule_ping()

    # -- subscribe_entities --

    def _subscribed_entities(self, message):
        if message.get("success"):
            log.info("Subscribed to {n} entities at {url}", n=len(self.service.entity_ids),
                     url=self.service.label)
            self.became_ready()
            return
        self.subscriptions.pop(message.get("id"), None)
        code = (message.get("error") or {}).get("code")
        if code == "unknown_command":
            log.info("Home Assistant at {url} does not know subscribe_entities: "
                     "using subscribe_events and get_states", url=self.service.label)
            self._fallback()
        else:
            self.command_failed(message, "subscribe_entities")
            self.dropConnection(abort=True)

    def _entities_event(self, event):
        touched = apply_entities_event(self.cache, event)
        for eid in touched:
            self.service.entity_changed(eid, self.cache.get(eid))
        if self._first_event:
            self._first_event = False
            self.service.check_missing(self.cache)

    # -- subscribe_events + get_states --

    def _fallback(self):
        sid = self.command({"type": "subscribe_events", "event_type": "state_changed"},
                           self._subscribed_events)
        self.subscriptions[sid] = self._state_changed
        self.command({"type": "get_states"}, self._states)

    def _subscribed_events(self, message):
        if not message.get("success"):
            self.subscriptions.pop(message.get("id"), None)
            self.command_failed(message, "subscribe_events")
            self.dropConnection(abort=True)

    def _state_changed(self, event):
        data = event.get("data")
        if event.get("event_type") != "state_changed" or not isinstance(data, dict):
            return
        eid = data.get("entity_id")
        if eid not in self.service.bindings:
            return
        new_state = data.get("new_state")
        if isinstance(new_state, dict):
            self.cache[eid] = new_state
        else:
            self.cache.pop(eid, None)
        self.service.entity_changed(eid, self.cache.get(eid))

    def _states(self, message):
        if not message.get("success") or not isinstance(message.get("result"), list):
            self.command_failed(message, "get_states")
            self.dropConnection(abort=True)
            return
        wanted = self.service.bindings
        count = 0
        for entry in message["result"]:
            eid = entry.get("entity_id") if isinstance(entry, dict) else None
            if eid in wanted:
                self.cache[eid] = entry
                self.service.entity_changed(eid, entry)
            count += 1
        log.info("Read {n} entity states from {url}", n=count, url=self.service.label)
        self.service.check_missing(self.cache)
        self.became_ready()

    def became_ready(self):
        if not self.ready:
            self.ready = True
            self.service.session_ready(self)

    # -- liveness --

    def _schedule_ping(self):
        self._ping_call = self.clock.callLater(self.service.ping_interval, self._ping)

    def _ping(self):
        self._ping_call = None
        self.command({"type": "ping"}, self._pong)
        self._pong_deadline = self.clock.callLater(self.service.ping_timeout, self._silent, "pong")

    def _pong(self, message):
        self._cancel_deadline()
        self._schedule_ping()

    def _silent(self, expected):
        self._pong_deadline = None
        log.warn("No {expected} from Home Assistant at {url} within {timeout} s: reconnecting",
                 expected=expected, url=self.service.label, timeout=self.service.ping_timeout)
        self.dropConnection(abort=True)

    def _cancel_deadline(self):
        if self._pong_deadline is not None and self._pong_deadline.active():
            self._pong_deadline.cancel()
        self._pong_deadline = None

    # -- end --

    def onClose(self, wasClean, code, reason):
        self._stop_timers()
        if getattr(self, "_too_big", False):
            code = 1009
        self._close_info = (wasClean, code, reason)

    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # Autobahn's hook for oversized messages: it fails the connection by
        # dropping it (close code 1006), so remember why for the log line.
        self._too_big = True
        super()._max_message_size_exceeded(msg_size, max_msg_size, reason)

    def connectionLost(self, reason):
        self._close_info = (False, None, reason.getErrorMessage())
        try:
            super().connectionLost(reason)
        finally:
            self._stop_timers()
            self.service.session_closed(self, *self._close_info)

    def _stop_timers(self):
        self._cancel_deadline()
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None


class HassClientFactory(WebSocketClientFactory):
    protocol = HassClientProtocol
    noisy = False

    def __init__(self, service, url, reactor):
        super().__init__(url=url, reactor=reactor)
        self.service = service
        limit = service.max_message_size
        self.setProtocolOptions(
            maxMessagePayloadSize=limit, maxFramePayloadSize=limit,
            # Our own timers on the service clock watch the handshake and the session.
            openHandshakeTimeout=0, closeHandshakeTimeout=0,
            autoPingInterval=0, tcpNoDelay=True,
        )
        self.logOctets = False
        self.logFrames = False
