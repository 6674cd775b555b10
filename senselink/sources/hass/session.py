"""One connection's conversation with Home Assistant, without I/O.

A L{HassSession} reads decoded messages and answers with dicts: the
authentication, the subscription (C{subscribe_entities}, or
C{subscribe_events} and C{get_states} on a server without it), replies
matched by id, and the keepalive (C{ping} every C{ping_interval} seconds, an
answer within C{ping_timeout}). Its timers run on an injected clock.

It writes through a I{link}, the connection it rides on:
C{link.send_json(message)}, C{link.close(code=None)} (a websocket close) and
C{link.abort()} (drop the connection). It reports to its I{service} (a
L{senselink.sources.hass.service.HassService}): C{token()},
C{authenticated(session, version)}, C{auth_rejected(message)},
C{entity_changed(entity_id, state)}, C{check_missing(cache)} and
C{session_ready(session)}; it reads the service's C{label}, C{entity_ids},
C{bindings}, C{ping_interval} and C{ping_timeout}.
"""

import json

from senselink.excerpt import clip, excerpt
from senselink.log import Logger
from senselink.sources.hass.cache import apply_entities_event, apply_state_changed

log = Logger(namespace="senselink.sources.hass")


class HassSession:
    """Authentication, subscription, id-matched replies and ping/pong of one connection."""

    def __init__(self, service, link, clock):
        self.service = service
        self.link = link
        self.clock = clock
        self.next_id = 1
        self.pending = {}          # command id -> callable(message)
        self.subscriptions = {}    # subscription id -> callable(event)
        self.cache = {}            # entity id -> state object (get_states shape)
        self.authenticated = False
        self.ready = False
        self._first_event = False
        self._ping_call = None
        self._deadline = None      # the answer awaited: auth_required, auth_ok, a pong, ...

    def start(self):
        """The connection is made; Home Assistant speaks first (a silent server counts as dead)."""
        self._expect("auth_required")

    def alive(self):
        """Bytes arrived: the server lives, even if a large message outlasts the timeout."""
        deadline = self._deadline
        if deadline is not None and deadline.active():
            deadline.reset(self.service.ping_timeout)

    def close(self, code=None):
        """Close the websocket politely (a close frame, with C{code} if given)."""
        self.link.close(code)

    def stop(self):
        """The connection ended: no more timers."""
        self._cancel_deadline()
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None

    # -- sending --

    def send_json(self, message):
        self.link.send_json(message)

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

    def receive(self, payload, is_binary=False):
        """One websocket message: a JSON message, or (coalesced) a JSON array of them."""
        try:
            decoded = json.loads(payload.decode("utf-8") if is_binary else payload)
        except (UnicodeDecodeError, ValueError) as e:
            log.warn("Home Assistant at {url} sent a message that is not JSON ({error}); ignored",
                     url=self.service.label, error=clip(str(e)))
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
        """One decoded message."""
        message_type = message.get("type")
        mid = message.get("id")
        if message_type == "event":
            handler = self.subscriptions.get(mid)
            event = message.get("event")
            if handler is not None and isinstance(event, dict):
                handler(event)
            return
        if message_type in ("result", "pong"):
            handler = self.pending.pop(mid, None)
            if handler is not None:
                handler(message)
            elif message_type == "result" and not message.get("success", True):
                self.command_failed(message, "command")
            return
        if message_type == "auth_required":
            self.send_auth(message)
        elif message_type == "auth_ok":
            self.auth_ok(message)
        elif message_type == "auth_invalid":
            self.authenticated = False
            self.service.auth_rejected(message)
            self.close()
            self._expect("close after auth_invalid")
        else:
            log.debug("Ignoring a {message_type} message from Home Assistant at {url}",
                      message_type=excerpt(message_type), url=self.service.label)

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
            self.link.abort()
            return
        # The auth message carries the token: it is built and sent here and never logged.
        self.send_json({"type": "auth", "access_token": token})
        self._expect("auth_ok")

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
            self.link.abort()

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
            self.link.abort()

    def _state_changed(self, event):
        eid = apply_state_changed(self.cache, event, self.service.bindings)
        if eid is not None:
            self.service.entity_changed(eid, self.cache.get(eid))

    def _states(self, message):
        if not message.get("success") or not isinstance(message.get("result"), list):
            self.command_failed(message, "get_states")
            self.link.abort()
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
        self._expect("pong")

    def _pong(self, message):
        self._cancel_deadline()
        self._schedule_ping()

    def _expect(self, what):
        """Hang up unless C{what} comes (or bytes keep arriving) within C{ping_timeout}."""
        self._cancel_deadline()
        self._deadline = self.clock.callLater(self.service.ping_timeout, self._silent, what)

    def _silent(self, expected):
        self._deadline = None
        log.warn("No {expected} from Home Assistant at {url} within {timeout} s: reconnecting",
                 expected=expected, url=self.service.label, timeout=self.service.ping_timeout)
        self.link.abort()

    def _cancel_deadline(self):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
