"""One connection's conversation with Home Assistant: a state machine without I/O.

A L{HassSession} is driven by L{senselink.sessiondriver.SessionDriver}: it
takes what the connection saw (L{OPENED}: the websocket upgrade was
answered; L{BEGINS}: the first bytes of a message; a whole message as bytes
or text; L{TooLarge}) and the time now, and returns outputs: messages to
send (L{Send} of a dict), L{Close}, L{Abort}, and events for the service
(L{Authenticated}, L{AuthRejected}, L{EntityChanged}, L{MissingEntities},
L{Ready}, L{Info}, L{Problem}). It never reads a clock or arms a timer:
L{next_deadline} says when L{timeout} is due.

The conversation: the upgrade answered and C{auth_required} within
C{ping_timeout} each, the token, C{auth_ok}, C{subscribe_entities} filtered to
the configured entities (or C{subscribe_events} and C{get_states} on a server
without it), then a C{ping} every C{ping_interval} seconds answered within
C{ping_timeout}. Each message is accepted only where the protocol allows it.
Liveness is a whole message or a pong, never a byte: a message that has
begun must end within C{message_timeout}. Complaints about what the server
sends are clipped excerpts, said once and then counted (L{Repeats}).
"""

from senselink.repeats import Repeats
from senselink.sessionoutputs import Abort, Close, Send
from senselink.sources.hass.cache import EntityCache
from senselink.sources.hass.following import Following
from senselink.sources.hass.events import (BEGINS, AuthRejected, Authenticated, Broken,
                                           MessageBegins, Opened, Problem, Ready, TooLarge)
from senselink.sources.hass.messages import Unreadable, decode, error_text, shown

MESSAGE_TIMEOUT = 60.0      # seconds from a message's first bytes to its last

UPGRADING, GREETING, AUTHENTICATING, SUBSCRIBING, READY, REJECTED, ENDED = (
    "upgrading", "greeting", "authenticating", "subscribing", "ready", "rejected", "ended")
AUTH_TYPES = ("auth_required", "auth_ok", "auth_invalid")


class HassSession:
    """Authentication, subscription, id-matched replies and keepalive of one connection."""

    def __init__(self, entity_ids, token, ping_interval=30.0, ping_timeout=10.0,
                 message_timeout=MESSAGE_TIMEOUT):
        """
        @param entity_ids: the entities the plugs follow; nothing else is kept.
        @param token: the access token, or a callable returning it (it may raise
            C{OSError} or C{ValueError}: an unreadable token file).
        """
        self.entities = EntityCache(entity_ids)   # the followed entities' states
        self.following = Following(self, self.entities)
        self.token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.message_timeout = message_timeout
        self.state = UPGRADING
        self.next_id = 1
        self.pending = {}           # command id -> method(message, now)
        self.subscriptions = {}     # subscription id -> method(event, now)
        self.messages = 0           # whole messages received
        self.repeats = Repeats()
        self.levels = {}            # complaint key -> log level
        self._expected = None       # what we wait for, in the words of its absence
        self._expect_by = None      # ... and by when
        self._ping_at = None
        self._message_by = None     # when the message that has begun must have ended
        self._out = []

    @property
    def cache(self):
        """Entity id -> state object (get_states shape), for the followed entities only."""
        return self.entities.states

    @property
    def ready(self):
        return self.state == READY

    @property
    def receiving(self):
        """Whether a message has begun and not ended."""
        return self._message_by is not None

    # -- the driver's calls --

    def start(self, now):
        self._out = []
        self._expect("did not answer the websocket upgrade", now)
        return self._out

    def receive(self, item, now):
        self._out = []
        if self.state == ENDED:
            return self._out
        if item is BEGINS or isinstance(item, MessageBegins):
            if self._message_by is None:
                self._message_by = now + self.message_timeout
        elif isinstance(item, Opened):
            if self.state == UPGRADING:
                self.state = GREETING
                self._expect("sent no auth_required", now)
        elif isinstance(item, TooLarge):
            self.fatal(f"sent a message of {item.size:,} bytes, over max_message_size "
                        f"({item.limit:,} bytes): reconnecting (raise max_message_size if "
                        f"this Home Assistant is that large)", level="error", once="too large")
        elif isinstance(item, Broken):
            self.fatal(f"broke the websocket protocol ({shown(item.reason)}): reconnecting")
        else:
            self._message_by = None
            self.messages += 1
            if self._expected == "sent no pong":
                self._expect_by = max(self._expect_by, now + self.ping_timeout)
            self._whole(item, now)
        return self._out

    def timeout(self, now):
        self._out = []
        if self._message_by is not None:
            if now >= self._message_by:
                self.fatal(f"began a message that did not end within "
                            f"{self.message_timeout:g} s: reconnecting")
        elif self._expect_by is not None and now >= self._expect_by:
            self.fatal(f"{self._expected} within {self.ping_timeout:g} s: reconnecting")
        if self._ping_at is not None and now >= self._ping_at and self.state != ENDED:
            self._ping_at = None
            self.command({"type": "ping"}, self._pong)
            self._expect("sent no pong", now)
        for key, line in self.repeats.due(now):
            self._out.append(Problem(line, self.levels.get(key, "warn")))
        return self._out

    def lost(self, now):
        self.state = ENDED
        self._expect_by = self._ping_at = self._message_by = None
        return [Problem(line, self.levels.get(key, "warn")) for key, line in self.repeats.flush()]

    def next_deadline(self):
        if self.state == ENDED:
            return None
        watch = self._message_by if self._message_by is not None else self._expect_by
        times = [t for t in (watch, self._ping_at, self.repeats.next_deadline()) if t is not None]
        return min(times) if times else None

    # -- helpers --

    def _expect(self, missed, now):
        self._expected, self._expect_by = missed, now + self.ping_timeout

    def _done_waiting(self):
        self._expected = self._expect_by = None

    def fatal(self, text, level="warn", once=None):
        self._out.append(Problem(text, level, fatal=True, once=once))
        self._out.append(Abort(text))
        self.state = ENDED

    def complain(self, key, text, now, level="warn"):
        self.levels[key] = level
        for line in self.repeats.note(key, text, now):
            self._out.append(Problem(line, level))

    def command(self, message, on_reply):
        cid = self.next_id
        self.next_id += 1
        self.pending[cid] = on_reply
        self._out.append(Send({"id": cid, **message}))
        return cid

    # -- messages --

    def _whole(self, payload, now):
        try:
            messages = decode(payload)
        except Unreadable as e:
            self.complain(e.key, f"{e}; ignored", now)
            return
        for message in messages:
            if self.state == ENDED:
                return
            if not isinstance(message, dict):
                self.complain("shape", f"sent {type(message).__name__} instead of a message; "
                               "ignored", now)
                continue
            try:
                self._dispatch(message, now)
            except Exception as e:      # a bug of ours: say it, counted, and go on
                self.complain("failed", f"sent a message that could not be handled "
                               f"({type(e).__name__}: {shown(str(e))}); ignored", now, "error")

    def _dispatch(self, message, now):
        message_type = message.get("type")
        if message_type in AUTH_TYPES:
            self._auth_message(message_type, message, now)
        elif self.state == REJECTED:
            return
        elif self.state not in (SUBSCRIBING, READY):
            self.complain("early", f"sent {shown(message_type)} before authentication; "
                           "ignored", now)
        elif message_type == "event":
            handler = self.subscriptions.get(message.get("id")) \
                if isinstance(message.get("id"), int) else None
            event = message.get("event")
            if handler is not None and isinstance(event, dict):
                handler(event, now)
            elif handler is not None:
                self.complain("event", f"sent an event that is {shown(event)}, not a map; "
                               "ignored", now)
        elif message_type in ("result", "pong"):
            mid = message.get("id")
            handler = self.pending.pop(mid, None) if isinstance(mid, int) else None
            if handler is not None:
                handler(message, now)
            elif message_type == "result" and message.get("success") is not True:
                self.complain("refused", f"refused command (id {shown(mid)}): "
                               f"{error_text(message)}", now, "error")
        else:
            self.complain("type", f"sent a message of type {shown(message_type)}; ignored",
                           now, "debug")

    def _auth_message(self, message_type, message, now):
        state = self.state
        if state == REJECTED:
            return
        if state == GREETING and message_type == "auth_required":
            self._send_auth(now)
        elif state == AUTHENTICATING and message_type == "auth_ok":
            self._authenticated(message, now)
        elif state == AUTHENTICATING and message_type == "auth_invalid":
            self.state = REJECTED
            self._out.append(AuthRejected(shown(message.get("message"))))
            self._out.append(Close(None))
            self._expect("sent no close after auth_invalid", now)
        else:
            when = ("after authentication" if state in (SUBSCRIBING, READY)
                    else "before we sent the token" if state == GREETING
                    else "while the token was being checked")
            self.fatal(f"sent {message_type} {when}, which its protocol does not allow: "
                        f"reconnecting")

    # -- authentication --

    def _send_auth(self, now):
        try:
            token = self.token() if callable(self.token) else self.token
        except (OSError, ValueError, UnicodeDecodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            self.fatal(f"asks for the access token, and it cannot be read from its file: "
                        f"{shown(reason)}", level="error")
            return
        # The auth message carries the token: it is sent and never logged.
        self._out.append(Send({"type": "auth", "access_token": token}))
        self.state = AUTHENTICATING
        self._expect("sent no auth_ok or auth_invalid", now)

    def _authenticated(self, message, now):
        self._done_waiting()
        self.state = SUBSCRIBING
        self._out.append(Authenticated(shown(message.get("ha_version"))))
        self.following.subscribe(now)
        self._ping_at = now + self.ping_interval

    # -- keepalive --

    def emit(self, output):
        """One more output of the call under way (for L{Following})."""
        self._out.append(output)

    def became_ready(self):
        if self.state == SUBSCRIBING:
            self.state = READY
            self._out.append(Ready())

    def _pong(self, message, now):
        self._done_waiting()
        self._ping_at = now + self.ping_interval
