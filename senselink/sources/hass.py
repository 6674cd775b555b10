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
this module only extracts raw values. The access token never appears in a
log line, not even at DEBUG.
"""

import json
import random
import re
from urllib.parse import urlsplit, urlunsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.application.internet import ClientService
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS

from senselink.config import (
    MODEL_FIELDS, Field, Invalid, SourceKind, boolean, integer, string,
)
from senselink.keypath import lookup, split
from senselink.log import Logger
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.sources.base import Complaints, Readiness, ReportingEndpoint, SourceService
from senselink.sources.tls import UnverifiedTLS, ca_file_path, client_tls, load_ca_file
from senselink.urls import safe_url

log = Logger()

API_PATH = "/api/websocket"
_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
# Home Assistant's own entity id rule (homeassistant.core.valid_entity_id).
_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


# ---------------------------------------------------------------- config


def normalise_url(text: str) -> str:
    """The websocket URL of a Home Assistant given as ws(s):// or http(s)://, path optional.

    C{http://hass:8123} -> C{ws://hass:8123/api/websocket};
    C{https://example.org/ha/} -> C{wss://example.org/ha/api/websocket}.
    """
    text = text.strip()
    parts = urlsplit(text)
    shown = safe_url(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise Invalid(f"expected a Home Assistant URL like ws://homeassistant.local:8123 "
                      f"(ws://, wss://, http:// or https://), got {shown!r}")
    try:
        parts.port
    except ValueError:
        raise Invalid(f"the port in {shown!r} is not a port number") from None
    path = parts.path.rstrip("/")
    if not path.endswith(API_PATH):
        if path.endswith("/api"):
            path = path[:-len("/api")]
        path += API_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def hass_url(value, raw=None):
    return normalise_url(string(value))


def entity_id(value, raw=None):
    value = string(value).strip()
    if not _ENTITY_ID.match(value):
        raise Invalid(f"expected a Home Assistant entity id like light.kitchen, got {value!r}")
    return value


def keypath(value, raw=None):
    value = string(value)
    if not split(value):
        raise Invalid(f"expected a '/'-separated keypath like attributes/brightness, got {value!r}")
    return value


def attribute_name(value, raw=None):
    value = string(value).strip()
    if not value or "/" in value:
        raise Invalid(f"expected an attribute name like brightness (use attribute_keypath "
                      f"for nested values), got {value!r}")
    return value


def read_token_file(path: str) -> str:
    """The token in C{path}, stripped; OSError or ValueError (empty) otherwise."""
    with open(path, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        raise ValueError("the file is empty")
    return token


class HassKind(SourceKind):
    name = "hass"
    doc = "Home Assistant entities over the websocket API"
    source_fields = {
        "url": Field(hass_url, required=True,
                     doc="Home Assistant URL, e.g. ws://homeassistant.local:8123"),
        "auth_token": Field(string, doc="Long-lived access token (or ${ENV_VAR})", secret=True),
        "auth_token_file": Field(string, doc="File holding the access token (e.g. a Docker secret)"),
        "max_message_size": Field(integer(minimum=0), default=0,
                                  doc="Largest websocket message in bytes (0: no limit)"),
        "verify_tls": Field(boolean, default=True, doc="Check the server certificate (wss://)"),
        "ca_file": Field(ca_file_path, doc="PEM file of the CA(s) that signed the server certificate"),
    }
    plug_fields = {
        **MODEL_FIELDS,
        "entity_id": Field(entity_id, required=True, doc="Home Assistant entity id, e.g. light.kitchen"),
        "attribute": Field(attribute_name, doc="Attribute scaled to watts, e.g. brightness"),
        "attribute_keypath": Field(keypath, doc="Keypath of the value scaled to watts, "
                                                "e.g. attributes/data/0/level"),
        "power_keypath": Field(keypath, doc="Keypath of a value in watts, "
                                            "e.g. attributes/current_power_w"),
        "state_keypath": Field(keypath, default="state", doc="Keypath of the on/off state"),
    }

    def check(self, source, where):
        options = source.options
        has_token = options.get("auth_token") is not None
        token_file = options.get("auth_token_file")
        if has_token and token_file is not None:
            where.at(options, "auth_token_file").error(
                "give either auth_token or auth_token_file, not both")
        elif not has_token and token_file is None:
            where.error("missing the access token: set auth_token (or ${ENV_VAR}) "
                        "or auth_token_file")
        elif has_token and not options["auth_token"].strip():
            where.at(options, "auth_token").error("the access token is empty")
        elif token_file is not None:
            try:
                read_token_file(token_file)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or str(e)
                where.at(options, "auth_token_file").error(
                    f"cannot read the access token from {token_file!r}: {reason}")
        for plug in source.plugs:
            here = plug._where
            o = plug.options
            if o.get("attribute") is not None and o.get("attribute_keypath") is not None:
                here.error("give either attribute or attribute_keypath, not both")
            if o.get("power_keypath") is not None and (
                    o.get("attribute") is not None or o.get("attribute_keypath") is not None):
                here.error("power_keypath reads watts directly: it cannot be combined with "
                           "attribute or attribute_keypath")
            elif ((o.get("attribute") is not None or o.get("attribute_keypath") is not None)
                    and not o.get("power_curve")):
                high, low = o.get("attribute_max"), o.get("attribute_min") or 0.0
                if high is None:
                    here.error("an attribute needs attribute_max (the value meaning max_watts) "
                               "or a power_curve")
                elif high <= low:
                    here.error(f"attribute_max ({high}) must be above attribute_min ({low})")

    def initial(self, plug):
        # As the original: 0 W until Home Assistant reports the entity.
        return 0.0, None

    def make_service(self, source, plugs, clock):
        return HassService(source, plugs, clock)


# ---------------------------------------------------------------- cache


def _context(value):
    return dict(value) if isinstance(value, dict) else {"id": value}


def apply_entities_event(cache: dict, event: dict):
    """Apply one C{subscribe_entities} event to C{cache} (entity id -> state object).

    Returns the entity ids whose state object changed or was removed, in order.
    """
    touched = []
    for eid, cs in (event.get("a") or {}).items():
        if not isinstance(cs, dict):
            continue
        cache[eid] = {
            "entity_id": eid, "state": cs.get("s"), "attributes": dict(cs.get("a") or {}),
            "last_changed": cs.get("lc"), "last_updated": cs.get("lu", cs.get("lc")),
            "context": _context(cs.get("c")),
        }
        touched.append(eid)
    for eid in event.get("r") or ():
        if isinstance(eid, str):
            cache.pop(eid, None)
            touched.append(eid)
    for eid, diff in (event.get("c") or {}).items():
        entry = cache.get(eid)
        if entry is None or not isinstance(diff, dict):
            continue
        plus = diff.get("+") or {}
        if "s" in plus:
            entry["state"] = plus["s"]
        if "lc" in plus:
            entry["last_changed"] = entry["last_updated"] = plus["lc"]
        elif "lu" in plus:
            entry["last_updated"] = plus["lu"]
        if "c" in plus:
            entry["context"] = {**entry["context"], **_context(plus["c"])}
        if isinstance(plus.get("a"), dict):
            entry["attributes"] = {**entry["attributes"], **plus["a"]}
        for key in (diff.get("-") or {}).get("a") or ():
            entry["attributes"].pop(key, None)
        touched.append(eid)
    return touched


# ---------------------------------------------------------------- the connection


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


# ---------------------------------------------------------------- the service


class _Binding:
    __slots__ = ("plug", "feed", "entity_id", "state_path", "attribute_path", "power_path")

    def __init__(self, plug, feed, entity_id, state_path, attribute_path, power_path):
        self.plug = plug
        self.feed = feed
        self.entity_id = entity_id
        self.state_path = state_path
        self.attribute_path = attribute_path
        self.power_path = power_path


def _attribute_path(options):
    if options.get("attribute") is not None:
        return ("attributes", options["attribute"])
    if options.get("attribute_keypath") is not None:
        return split(options["attribute_keypath"])
    return None


class HassService(SourceService):
    """Keeps one websocket connection to Home Assistant and feeds the source's plugs."""

    kind = "hass"
    initial_delay = 1.0
    max_delay = 60.0
    factor = 2.0
    jitter = 0.25            # delays are drawn from [(1 - jitter) * d, d]
    ping_interval = 30.0
    ping_timeout = 10.0

    def __init__(self, source, plugs, clock, *, reactor=None, random=random.random,
                 ping_interval=None, ping_timeout=None):
        super().__init__(clock)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.random = random
        if ping_interval is not None:
            self.ping_interval = ping_interval
        if ping_timeout is not None:
            self.ping_timeout = ping_timeout
        options = source.options
        self.url = options["url"]
        parts = urlsplit(self.url)
        self.label = safe_url(self.url)
        self._token = options.get("auth_token")
        self._token_file = options.get("auth_token_file")
        self.max_message_size = options.get("max_message_size") or 0
        self.complaints = Complaints(log)
        self.bindings = {}
        for pc in source.plugs:
            o = pc.options
            attribute_path = _attribute_path(o)
            power_path = split(o["power_keypath"]) if o.get("power_keypath") else None
            feed = Feed(plugs[pc.id], PowerModel.from_options(o), clock,
                        timeout=o.get("timeout_duration"), uses_power=power_path is not None,
                        uses_attribute=attribute_path is not None)
            self.feeds.append(feed)
            binding = _Binding(plugs[pc.id], feed, o["entity_id"],
                               split(o.get("state_keypath") or "state"), attribute_path, power_path)
            self.bindings.setdefault(o["entity_id"], []).append(binding)
        self.entity_ids = sorted(self.bindings)
        self.protocol = None
        self.sessions = 0           # authenticated sessions so far
        self.readiness = Readiness(self.retry_delay)
        self._rejected = False      # the last auth attempt was refused
        self._too_big = False       # a message over max_message_size was logged
        self.factory = HassClientFactory(self, self.url, reactor)
        endpoint = ReportingEndpoint(self._endpoint(parts, options), self.connect_failed,
                                     f"Home Assistant endpoint {self.label}")
        self.client = ClientService(endpoint, self.factory, retryPolicy=self.readiness.retry_delay,
                                    clock=clock)
        self.client.setServiceParent(self)

    def _endpoint(self, parts, options):
        secure = parts.scheme == "wss"
        host = parts.hostname
        port = parts.port or (443 if secure else 80)
        endpoint = HostnameEndpoint(self.reactor, host, port, timeout=self.ping_timeout)
        if not secure:
            return endpoint
        if not options.get("verify_tls", True):
            creator = UnverifiedTLS(host)
        else:
            ca_file = options.get("ca_file")
            creator = client_tls(host, trust=load_ca_file(ca_file) if ca_file else None)
        return wrapClientTLS(creator, endpoint)

    def stopService(self):
        protocol = self.protocol
        if protocol is not None:
            protocol.sendClose(1000)    # a polite goodbye before the connection is closed
        return super().stopService()

    def connect_failed(self, failure):
        self.complaints.problem("connect", "Cannot connect to Home Assistant at {url}: {reason}",
                                url=self.label, reason=failure.getErrorMessage())

    # -- token, never logged --

    def token(self) -> str:
        if self._token_file is not None:
            return read_token_file(self._token_file)
        return self._token.strip()

    # -- reconnecting --

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next connection attempt after C{attempts} failed ones in a row.

        Exponential, jittered, capped; after Home Assistant refused the token,
        only the slow end of the range. Sessions that ended before they were
        ready count as failed attempts (L{Readiness}).
        """
        if self._rejected:
            base = self.max_delay
        else:
            attempts = max(attempts, 1)
            base = min(self.max_delay, self.initial_delay * self.factor ** min(attempts - 1, 32))
        delay = base * (1.0 - self.jitter * self.random())
        log.info("Reconnecting to Home Assistant at {url} in {delay:.1f} s",
                 url=self.label, delay=delay)
        return delay

    # -- session events (called by the protocol) --

    def authenticated(self, protocol, version):
        self.complaints.resolved("connect")
        self.protocol = protocol
        self.connected = True
        self.sessions += 1
        if self._rejected:
            self._rejected = False
        log.info("Connected to Home Assistant {version} at {url}", version=version, url=self.label)

    def auth_rejected(self, message):
        if not self._rejected:
            self._rejected = True
            log.error("Home Assistant at {url} rejected the access token ({reason}); "
                      "retrying every minute or so. Check auth_token / auth_token_file.",
                      url=self.label, reason=message.get("message"))
        else:
            log.debug("Home Assistant at {url} still rejects the access token", url=self.label)

    def session_ready(self, protocol):
        self.readiness.ready(protocol)
        self._too_big = False

    def session_closed(self, protocol, was_clean, code, reason):
        if self.protocol is protocol:
            self.protocol = None
        was_connected = self.connected
        self.connected = False
        self.readiness.ended(protocol)
        if code == 1009:
            if not self._too_big:
                self._too_big = True
                log.error("Home Assistant at {url} sent a message larger than max_message_size "
                          "({limit} bytes); raise it or remove it (no limit)",
                          url=self.label, limit=self.max_message_size)
        elif not was_connected and self.running and not self._rejected:
            self.complaints.problem(
                "connect", "Cannot connect to Home Assistant at {url}: the connection ended "
                "before authentication ({reason})", url=self.label, reason=reason)
        elif was_connected and self.running:
            log.warn("Disconnected from Home Assistant at {url} ({reason}); plugs keep their "
                     "last values", url=self.label,
                     reason=reason or ("closed" if was_clean else "connection lost"))

    # -- values --

    def entity_changed(self, eid, state):
        """A state object arrived for C{eid} (None: the entity is gone).

        Problems are logged once per entity (naming every plug that follows
        it) until all its plugs read a good value again.
        """
        self.touch()
        bindings = self.bindings.get(eid, ())
        if state is None:
            self.complaints.problem(
                eid, "Home Assistant entity {entity} is gone; {plugs} keep their last values",
                entity=eid, plugs=_plug_list(bindings))
            return
        failed, done = [], []
        for b in bindings:
            kwargs = {"state": lookup(state, b.state_path)}
            if b.attribute_path is not None:
                kwargs["attribute"] = lookup(state, b.attribute_path)
            if b.power_path is not None:
                kwargs["power"] = lookup(state, b.power_path)
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
                eid, "Cannot read Home Assistant entity {entity} (state {state!r}): {problems}",
                entity=eid, state=state.get("state") if isinstance(state, dict) else None,
                problems="; ".join(failed))
        else:
            self.complaints.resolved(eid, "Home Assistant entity {entity} readable again: "
                                          "{plugs}", entity=eid, plugs=", ".join(done))

    def check_missing(self, cache):
        for eid, bindings in self.bindings.items():
            if eid not in cache:
                self.complaints.problem(
                    eid, "Home Assistant at {url} has no entity {entity}; {plugs} keep their "
                    "last values until it appears", url=self.label, entity=eid,
                    plugs=_plug_list(bindings))


def _plug_list(bindings):
    return ", ".join(f"{b.plug.id} ({b.plug.watts} W)" for b in bindings) or "no plugs"
