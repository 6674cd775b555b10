"""MQTT plugs: power readings, on/off states and attributes (brightness) from MQTT topics.

The client is twisted-mqtt (C{mqtt.client.factory.MQTTFactory}, subscriber
profile) driven by a C{ClientService} that reconnects with exponential
back-off and jitter. Every distinct topic is subscribed once per connection
(a clean session), however many plugs use it; each message fans out to the
plugs on that topic through their L{senselink.power.Feed}. The broker sends
retained messages right after the subscription, which gives plugs their
values at start-up.

How twisted-mqtt 0.3.x is used, and workarounds for it and C{ClientService}
(all in this module; the library is used as installed):

 - C{MQTTFactory} is a C{ReconnectingClientFactory}; only its C{buildProtocol}
   is used (from our own factory), so its own reconnection never runs and
   C{ClientService} alone decides when to connect.
 - Each connection builds a new protocol object, and its C{onPublish} handler
   is set once there, so reconnecting never stacks handlers. The library
   allows one SUBSCRIBE in flight: all topics go in one SUBSCRIBE.

 - C{ClientService}'s C{prepareConnection} cannot reject a connection that is
   then closed (Twisted 26.10 raises C{NoTransition} for C{_clientDisconnected}
   in its C{Waiting} state). So the MQTT handshake runs after the TCP
   connection counts as made, and the retry policy adds the number of
   connections in a row that closed before their subscription was answered
   (refused credentials, a broker that hangs up) to the attempt count, so
   refusals back off too (L{senselink.sources.base.Readiness}).
 - The library's timers use the global reactor and are not all cancelled when
   the connection is lost (the CONNACK timeout keeps running): each protocol
   gets a C{callLater} that records its timers, and they are cancelled when
   the connection closes.
 - The library encodes passwords as ASCII, silently dropping other
   characters: the config refuses non-ASCII passwords with a clear error.
 - A CONNACK code the library does not know raises C{IndexError} inside
   C{dataReceived}: the connection wrapper catches errors from the library's
   parser and closes the connection instead of letting them escape.
 - The library logs a DEBUG line for every message through its own
   module-level C{twisted.logger} loggers, which twistd writes out whatever
   the level: about 100 bytes of log per MQTT message and most of the CPU
   spent per message. Those module loggers are replaced by our level-aware
   L{senselink.log.Logger} (same namespace) before the first connection.
 - Received PUBLISH packets never reach the library: the connection wrapper
   splits the byte stream into packets itself, reads PUBLISHes (QoS 0 and
   1, answering QoS 1 with PUBACK) and hands every other packet whole to
   the library. The library's reader copies its buffer once per packet and
   builds an object per message; this keeps a message at a few
   microseconds (see benchmarks/README.md, "Ingest").
"""

import hashlib
import json
import random
import socket

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Factory, Protocol

from senselink.config import (MODEL_FIELDS, Field, Invalid, SourceKind, _describe, host,
                              integer, state_value, string)
from senselink.keypath import MISSING, lookup
from senselink.log import Logger
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.sources.base import Complaints, Readiness, ReportingEndpoint, SourceService
from senselink.sources.tls import (CertificateFileError, client_tls, load_ca_file,
                                   load_client_certificate)

log = Logger()

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
MAX_RETRY_DELAY = 60.0
CONNECT_TIMEOUT = 10.0   # seconds for the TCP (and TLS) connection itself

ROLES = ("power", "state", "attribute")

# Packet types a broker sends (MQTT 3.1.1 section 2.2.1): CONNACK, PUBLISH,
# PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, PINGRESP.
_FROM_BROKER = frozenset((2, 3, 4, 5, 6, 7, 9, 11, 13))

# CONNACK return codes of MQTT 3.1.1 (section 3.2.2.3).
CONNACK_REASONS = {
    1: "the broker does not accept MQTT 3.1.1",
    2: "the broker rejected the client_id",
    3: "the MQTT service is unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


# ---------------------------------------------------------------- config


def tls_setting(value, raw=None):
    """C{true}/C{false}, or a mapping with C{ca_file}, C{cert_file}, C{key_file}."""
    if isinstance(value, bool):
        return {} if value else None
    if not isinstance(value, dict):
        raise Invalid(f"expected true, false or a mapping with ca_file, cert_file, key_file; "
                      f"got {_describe(value)}")
    known = ("ca_file", "cert_file", "key_file")
    unknown = [k for k in value if k not in known]
    if unknown:
        raise Invalid(f"unknown tls key {unknown[0]!r}; known keys: {', '.join(known)}")
    out = {key: string(value[key]) for key in known if value.get(key) is not None}
    if ("cert_file" in out) != ("key_file" in out):
        raise Invalid("tls cert_file and key_file go together (the client certificate and its key)")
    try:
        tls_certificates(out)
    except CertificateFileError as e:
        raise Invalid(str(e)) from None
    return out


def tls_certificates(tls):
    """C{(trust root or None, client certificate or None)} from the files of a C{tls} setting.

    @raise CertificateFileError: a file cannot be used.
    """
    trust = load_ca_file(tls["ca_file"]) if tls.get("ca_file") else None
    mine = None
    if tls.get("cert_file"):
        mine = load_client_certificate(tls["cert_file"], tls["key_file"])
    return trust, mine


def ascii_password(value, raw=None):
    value = string(value)
    if not value.isascii():
        # twisted-mqtt writes the password as ASCII and drops other characters.
        raise Invalid("the MQTT client library can only send passwords made of ASCII characters")
    return value


SOURCE_FIELDS = {
    "host": Field(host, required=True, doc="MQTT broker host name or IP address"),
    "port": Field(integer(minimum=1, maximum=65535),
                  doc=f"Broker port (default {DEFAULT_PORT}, {DEFAULT_TLS_PORT} with tls)"),
    "username": Field(string, doc="User name (default: connect anonymously)"),
    "password": Field(ascii_password, doc="Password (never logged)", secret=True),
    "client_id": Field(string, doc="MQTT client id (default: stable, from host name and config)"),
    "keepalive": Field(integer(minimum=0, maximum=65535), default=60,
                       doc="Seconds between keepalive pings (0: none)"),
    "qos": Field(integer(minimum=0, maximum=1), default=0, doc="Subscription QoS, 0 or 1"),
    "tls": Field(tls_setting, doc="true, or ca_file/cert_file/key_file, for TLS brokers"),
}

PLUG_FIELDS = {
    **MODEL_FIELDS,
    "on_state_value": Field(state_value, default="on", doc="State payload that means on"),
    "off_state_value": Field(state_value, default="off", doc="State payload that means off"),
    "power_topic": Field(string, doc="Topic with the power in watts"),
    "power_topic_keypath": Field(string, doc="Keypath of the power in a JSON payload"),
    "state_topic": Field(string, doc="Topic with the on/off state"),
    "state_topic_keypath": Field(string, doc="Keypath of the state in a JSON payload"),
    "attribute_topic": Field(string, doc="Topic with an attribute such as brightness"),
    "attribute_topic_keypath": Field(string, doc="Keypath of the attribute in a JSON payload"),
}


def _valid_filter(topic):
    """A problem with the topic filter C{topic}, or None (MQTT 3.1.1 section 4.7)."""
    if not topic:
        return "a topic must not be empty"
    if "\0" in topic:
        return "a topic must not contain NUL"
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return "'#' must be a whole last level, as in 'home/#'"
        if "+" in level and level != "+":
            return "'+' must be a whole level, as in 'home/+/power'"
    return None


def topic_matches(topic_filter, topic):
    """Whether the topic of a message matches a subscription's topic filter."""
    if topic_filter == topic:
        return True
    if "+" not in topic_filter and "#" not in topic_filter:
        return False
    filter_levels = topic_filter.split("/")
    levels = topic.split("/")
    if topic.startswith("$") and filter_levels[0] in ("+", "#"):
        return False
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(levels):
            return False
        if level != "+" and level != levels[index]:
            return False
    return len(levels) == len(filter_levels)


def default_client_id(source):
    """A client id that stays the same across restarts of this host with this config."""
    seed = "\0".join(str(part) for part in (
        socket.gethostname(), source.options.get("host"), source.options.get("port"),
        source.options.get("username"), source.index))
    return "senselink-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]


class MqttKind(SourceKind):
    name = "mqtt"
    doc = "Plugs that follow MQTT topics"
    source_fields = SOURCE_FIELDS
    plug_fields = PLUG_FIELDS

    def check(self, source, where):
        options = source.options
        if options.get("password") is not None and options.get("username") is None:
            where.child("password").error("a password needs a username (MQTT sends none without)")
        for plug in source.plugs:
            here = getattr(plug, "_where", where)
            topics = [role for role in ROLES if plug.get(f"{role}_topic") is not None]
            if not topics:
                here.error("an mqtt plug needs power_topic, state_topic or attribute_topic")
            if "power" in topics and "attribute" in topics:
                here.error("power_topic and attribute_topic cannot be used together: "
                           "the power is either measured or derived from the attribute")
            for role in ROLES:
                topic = plug.get(f"{role}_topic")
                if topic is not None:
                    problem = _valid_filter(topic)
                    if problem:
                        here.child(f"{role}_topic").error(f"{problem}, got {topic!r}")
                elif plug.get(f"{role}_topic_keypath") is not None:
                    here.child(f"{role}_topic_keypath").error(
                        f"{role}_topic_keypath needs {role}_topic")
            if "attribute" in topics and plug.get("power_curve") is None:
                low, high = plug.get("attribute_min", 0.0), plug.get("attribute_max")
                if high is None:
                    here.child("attribute_topic").error(
                        "attribute_topic needs attribute_max (or a power_curve) to scale "
                        "the attribute to watts")
                elif high <= low:
                    here.child("attribute_max").error(
                        f"attribute_max must be above attribute_min ({low}), got {high}")

    def initial(self, plug):
        return PowerModel.from_options(plug.options).off_usage, None

    def make_service(self, source, plugs, clock):
        return MqttService(source, plugs, clock)


# ---------------------------------------------------------------- the connection


class _Route:
    """One plug's use of one topic: which feed method and which keypath."""

    __slots__ = ("feed", "role", "keypath", "apply")

    def __init__(self, feed, role, keypath):
        self.feed = feed
        self.role = role
        self.keypath = keypath
        self.apply = getattr(feed, role)     # Feed.power, Feed.state or Feed.attribute

    @property
    def plug(self):
        return self.feed.plug


_LIBRARY_LOG_MODULES = ("mqtt.pdu", "mqtt.client.base", "mqtt.client.factory",
                        "mqtt.client.subscriber", "mqtt.client.publisher", "mqtt.client.pubsubs")


def _quiet_library_loggers():
    """Make twisted-mqtt's loggers honour LOGLEVEL (see the module docstring)."""
    import importlib
    for name in _LIBRARY_LOG_MODULES:
        module = importlib.import_module(name)
        if not isinstance(getattr(module, "log", None), Logger):
            module.log = Logger(namespace="mqtt")


class _ClientFactory(Factory):
    """Builds one L{_Connection} per TCP connection around twisted-mqtt's subscriber protocol."""

    noisy = False

    def __init__(self, service):
        # Imported here: twisted-mqtt logs its version when the factory is made.
        _quiet_library_loggers()
        from mqtt.client.factory import MQTTFactory
        self.service = service
        self.mqtt = MQTTFactory(profile=MQTTFactory.SUBSCRIBER)

    def buildProtocol(self, addr):
        return _Connection(self.service, self.mqtt.buildProtocol(addr))


class _Connection(Protocol):
    """One MQTT session: CONNECT, SUBSCRIBE every topic once, deliver PUBLISHes.

    Wraps twisted-mqtt's protocol (C{client}) so that its timers die with the
    connection and errors in its parser close the connection.
    """

    def __init__(self, service, client):
        self.service = service
        self.client = client
        self.mqtt_connected = False
        self.reported = False     # why the connection closes was logged already
        self.subscribed = []
        self._timers = []
        self._lost = False
        self._pending = []        # the start of a packet not all received yet
        self._pending_size = 0
        self._needed = 0          # bytes that packet needs, as far as known
        # The library schedules its timers through self.callLater (by default
        # the global reactor's); keep them so they can be cancelled.
        client.callLater = self._call_later

    def _call_later(self, delay, function, *args, **kwargs):
        self._timers = [t for t in self._timers if t.active()]
        timer = self.service.reactor.callLater(delay, function, *args, **kwargs)
        self._timers.append(timer)
        return timer

    def connectionMade(self):
        client = self.client
        client.makeConnection(self.transport)
        # A new protocol object per connection: exactly one handler, never stacked.
        client.onPublish = self._published
        options = self.service.options
        d = client.connect(self.service.client_id, keepalive=options["keepalive"],
                           username=options.get("username"), password=options.get("password"),
                           cleanStart=True)
        d.addCallbacks(self._accepted, self._refused)

    def dataReceived(self, data):
        """Split the stream into MQTT packets; PUBLISHes are delivered here, the rest
        (CONNACK, SUBACK, PINGRESP) goes to the library one whole packet at a time.

        The library copies its whole receive buffer once per packet and builds
        a PDU object and a DEBUG event for each PUBLISH: about three quarters
        of the CPU an MQTT message cost. Reading the fixed header and the
        topic here (MQTT 3.1.1 sections 2.2 and 3.3) keeps the cost per
        message to a few slices.
        """
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return      # a large packet still arriving: join its chunks once
            data = b"".join(self._pending)
            self._pending = []
        size = len(data)
        offset = 0
        deliver = self.service._message
        topics = self.service.raw_topics
        connected = self.mqtt_connected    # re-read after each packet the library handles
        delivered = False
        needed = 2       # bytes the packet left over at the end needs (so far as known)
        try:
            while size - offset >= 2:
                first = data[offset]
                length = data[offset + 1]
                if first | 1 == 0x31 and length < 0x80 and connected:
                    # The usual packet: a QoS 0 PUBLISH shorter than 128 bytes.
                    end = offset + 2 + length
                    if end > size:
                        needed = end - offset
                        break
                    if length < 2:
                        raise ValueError("a malformed PUBLISH packet")
                    topic_end = offset + 4 + ((data[offset + 2] << 8) | data[offset + 3])
                    if topic_end > end:
                        raise ValueError("a malformed PUBLISH packet")
                    raw = data[offset + 4:topic_end]
                    topic = topics.get(raw)
                    if topic is None:
                        topic = raw.decode("utf-8")
                    if deliver(topic, data[topic_end:end], first & 1):
                        delivered = True
                    offset = end
                    continue
                # Remaining length: 1 to 4 bytes, 7 bits each, low bits first.
                start = offset + 2
                if length & 0x80:
                    length &= 0x7F
                    shift = 7
                    while True:
                        if start >= size:
                            length = None     # the length itself is not all here
                            break
                        byte = data[start]
                        start += 1
                        length |= (byte & 0x7F) << shift
                        if not byte & 0x80:
                            break
                        shift += 7
                        if shift > 21:
                            raise ValueError("a remaining length longer than 4 bytes")
                    if length is None:
                        needed = size - offset + 1
                        break
                end = start + length
                if end > size:
                    needed = end - offset
                    break
                if first >> 4 == 3 and connected:
                    qos = (first >> 1) & 3
                    if length < 2 or qos == 3:
                        raise ValueError("a malformed PUBLISH packet")
                    topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
                    if topic_end + (2 if qos else 0) > end:
                        raise ValueError("a malformed PUBLISH packet")
                    topic = data[start + 2:topic_end].decode("utf-8")
                    if qos == 0:
                        if deliver(topic, data[topic_end:end], first & 1):
                            delivered = True
                    elif qos == 1:
                        # PUBACK first: the message is ours once it is read.
                        self.transport.write(b"\x40\x02" + data[topic_end:topic_end + 2])
                        if deliver(topic, data[topic_end + 2:end], first & 1):
                            delivered = True
                    else:
                        # Never subscribed at QoS 2; the library knows that handshake.
                        self.client.dataReceived(data[offset:end])
                else:
                    if first >> 4 not in _FROM_BROKER:
                        raise ValueError(f"a packet of type {first >> 4}, which brokers never send")
                    self.client.dataReceived(data[offset:end])
                    connected = self.mqtt_connected
                offset = end
        except Exception as e:
            self.reported = True
            log.error("MQTT broker {label} sent what the MQTT client cannot handle ({error}); "
                      "reconnecting", label=self.service.label, error=repr(e))
            self._pending = []
            self.transport.abortConnection()
            return
        finally:
            if delivered:
                self.service.touch()
        if offset < size:
            rest = data[offset:]
            self._pending = [rest]
            self._pending_size = len(rest)
            self._needed = needed

    def connectionLost(self, reason):
        self._lost = True
        self._pending = []
        try:
            # First: it cancels its keepalive alarm itself (and fails on a cancelled one).
            self.client.connectionLost(reason)
        finally:
            for timer in self._timers:
                if timer.active():
                    timer.cancel()
            self._timers = []
            self.service._connection_lost(self, reason)

    # -- the MQTT handshake --

    def _accepted(self, session_present):
        if self._lost:
            return
        self.mqtt_connected = True
        self.service._connection_ready(self)
        topics = self.service.topics
        if not topics:
            return
        qos = self.service.options["qos"]
        # One SUBSCRIBE carrying every distinct topic: the library allows one
        # SUBSCRIBE in flight at a time.
        d = self.client.subscribe([(topic, qos) for topic in topics])
        d.addCallbacks(self._subscribed, self._not_subscribed, callbackArgs=(topics,))

    def _refused(self, failure):
        if self._lost:
            return None
        self.reported = True
        self.service._refused(failure)
        self.transport.abortConnection()
        return None

    def _subscribed(self, granted, topics):
        if self._lost:
            return
        refused = []
        for topic, answer in zip(topics, granted or ()):
            failed = answer[1] if isinstance(answer, tuple) else answer == 0x80
            if failed:
                refused.append(topic)
            else:
                self.subscribed.append(topic)
        self.service._subscribed(self, refused)

    def _not_subscribed(self, failure):
        if not self._lost:
            log.error("MQTT broker {label}: subscribing failed: {reason}; reconnecting",
                      label=self.service.label, reason=_why(failure))
            self.transport.abortConnection()
        return None

    def _published(self, topic, payload, qos=0, dup=False, retain=False, msgId=None):
        if not self._lost and self.service._message(topic, payload, retain):
            self.service.touch()

    def disconnect(self):
        """Say goodbye to the broker (DISCONNECT) and close the connection."""
        if self.mqtt_connected and not self._lost:
            try:
                self.client.disconnect()
            except Exception:
                self.transport.loseConnection()


# ---------------------------------------------------------------- the service


class MqttService(SourceService):
    """Feeds the plugs of one C{mqtt} source from one broker connection."""

    kind = "mqtt"

    def __init__(self, source, plugs, clock, reactor=None, endpoint=None):
        """
        @param clock: time for staleness timeouts and reconnection delays.
        @param reactor: the network (default: C{clock} when it is a reactor,
            else the global reactor); the library's own timers run on it.
        @param endpoint: a client endpoint to use instead of the configured one.
        """
        super().__init__(clock)
        if reactor is None:
            if IReactorTCP.providedBy(clock):
                reactor = clock
            else:
                from twisted.internet import reactor
        self.reactor = reactor
        self.options = dict(source.options)
        self.host = self.options["host"]
        tls = self.options.get("tls")
        self.port = self.options.get("port") or (DEFAULT_TLS_PORT if tls is not None
                                                 else DEFAULT_PORT)
        self.client_id = self.options.get("client_id") or default_client_id(source)
        user = self.options.get("username")
        self.label = f"{self.host}:{self.port}"
        self.user_text = f"user {user!r}" if user is not None else "no user (anonymous)"
        self.complaints = Complaints(log)
        self.routes = {}           # topic filter -> [_Route]
        for plug_config in source.plugs:
            self._add_plug(plug_config, plugs[plug_config.id])
        self.topics = list(self.routes)
        # The exact topics as they arrive in PUBLISH packets: not decoded for each message.
        self.raw_topics = {topic.encode("utf-8"): topic for topic in self.topics
                           if "+" not in topic and "#" not in topic}
        self._wildcard_routes = [(f, r) for f, r in self.routes.items() if "+" in f or "#" in f]
        self.connection = None     # the _Connection whose MQTT session is up
        self.subscribed = []       # topics the broker granted on that connection
        self.subscribe_requests = 0
        self.messages = 0
        self.readiness = Readiness(self.retry_delay)
        self._refusal_logged = False
        self._backoff = backoffPolicy(initialDelay=1.0, maxDelay=MAX_RETRY_DELAY - 1.0,
                                      factor=1.5, jitter=random.random)
        if endpoint is None:
            endpoint = self._endpoint(tls)
        self.client_service = ClientService(ReportingEndpoint(endpoint, self._cannot_connect,
                                                              f"MQTT broker {self.label}"),
                                            _ClientFactory(self),
                                            retryPolicy=self.readiness.retry_delay, clock=clock)
        self.client_service.setServiceParent(self)

    def _add_plug(self, plug_config, plug):
        options = plug_config.options
        model = PowerModel.from_options(options)
        feed = Feed(plug, model, self.clock, timeout=options.get("timeout_duration"),
                    uses_power=options.get("power_topic") is not None,
                    uses_attribute=options.get("attribute_topic") is not None)
        self.feeds.append(feed)
        for role in ROLES:
            topic = options.get(f"{role}_topic")
            if topic is not None:
                keypath = options.get(f"{role}_topic_keypath")
                self.routes.setdefault(topic, []).append(_Route(feed, role, keypath))

    def _endpoint(self, tls):
        endpoint = HostnameEndpoint(self.reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        if tls is None:
            return endpoint
        trust, mine = tls_certificates(tls)
        return wrapClientTLS(client_tls(self.host, trust, mine), endpoint)

    # -- reconnection --

    def retry_delay(self, attempts):
        """Seconds before the next attempt after C{attempts} failed ones in a row.

        Exponential back-off with jitter, capped at 60 s. Connections that
        closed before their subscription was answered count as failed
        attempts (L{Readiness}).
        """
        return min(MAX_RETRY_DELAY, self._backoff(attempts))

    def when_ready(self):
        """A Deferred that fires once the current or next connection has subscribed."""
        return self.readiness.when_ready()

    def _cannot_connect(self, failure):
        if self.running:
            self.last_error = f"cannot connect to {self.label}: {_why(failure)}"
            self.complaints.problem(
                "connection", "Cannot connect to MQTT broker {label}: {reason}; plugs keep "
                "their last values; retrying with back-off",
                label=self.label, reason=_why(failure))
        return failure

    def _connection_ready(self, connection):
        self.complaints.resolved("connection")
        self.last_error = None
        if self._refusal_logged:
            log.info("MQTT broker {label} accepted {user} again", label=self.label,
                     user=self.user_text)
        self._refusal_logged = False
        self.connection = connection
        self.subscribed = connection.subscribed
        self.subscribe_requests += len(self.topics)
        log.info("Connected to MQTT broker {label} as {client_id}; subscribing to {n} topic(s)",
                 label=self.label, client_id=self.client_id, n=len(self.topics))
        if not self.topics:
            self._subscribed(connection, [])

    def _subscribed(self, connection, refused):
        for topic in refused:
            self.last_error = f"topic {topic} refused by the broker {self.label}"
            log.error("MQTT broker {label} refused the subscription to {topic} for {user} "
                      "(not authorised?); plugs on it keep their values",
                      label=self.label, topic=topic, user=self.user_text)
        self.connected = True
        self.readiness.ready(connection)

    def _refused(self, failure):
        error = failure.value
        code = error.args[0] if getattr(error, "args", None) else None
        if isinstance(code, int):
            reason = CONNACK_REASONS.get(code, f"refused with CONNACK code {code}")
            what = f"{reason} (CONNACK code {code})"
        else:
            what = _why(failure)
        self.last_error = f"{self.label} refused the connection for {self.user_text}: {what}"
        if not self._refusal_logged:
            self._refusal_logged = True
            log.error("MQTT broker {label} refused the connection for {user}: {reason}; "
                      "check username and password of the mqtt source; retrying with back-off",
                      label=self.label, user=self.user_text, reason=what)
        else:
            log.info("MQTT broker {label} still refuses {user}: {reason}",
                     label=self.label, user=self.user_text, reason=what)

    def _connection_lost(self, connection, reason):
        was_ready = self.readiness.ended(connection)
        if connection is self.connection:
            self.connection = None
            self.subscribed = []
            self.connected = False
            if self.running and was_ready:
                self.last_error = f"lost the connection to {self.label}: {_why(reason)}"
                log.warn("Lost the connection to MQTT broker {label}: {reason}; plugs keep "
                         "their last values; reconnecting", label=self.label,
                         reason=_why(reason))
        elif not connection.mqtt_connected:
            if self.running and not connection.reported:
                self.last_error = (f"the connection to {self.label} ended before the broker "
                                   f"accepted the MQTT session: {_why(reason)}")
                self.complaints.problem(
                    "connection", "The connection to MQTT broker {label} ended before the "
                    "broker accepted the MQTT session: {reason}; retrying with back-off",
                    label=self.label, reason=_why(reason))

    def stopService(self):
        connection = self.connection
        if connection is not None:
            connection.disconnect()
        self.readiness.cancel_waiters("the MQTT source stopped")
        return super().stopService()

    # -- messages --

    def _message(self, topic, payload, retain=False):
        """Apply one message to the plugs on its topic; whether any took a value from it.

        The caller calls L{touch} when one did (once per read of the socket).
        """
        self.messages += 1
        delivered = False
        exact = self.routes.get(topic)
        if exact is not None and "+" not in topic and "#" not in topic:
            # The common case: a plain topic. Only filters with wildcards need matching.
            for route in exact:
                if self._apply(route, topic, payload, retain):
                    delivered = True
            filters = self._wildcard_routes
        else:
            filters = self.routes.items()
        if filters:
            for topic_filter, routes in filters:
                if topic_filter != topic and topic_matches(topic_filter, topic):
                    for route in routes:
                        if self._apply(route, topic, payload, retain):
                            delivered = True
        return delivered

    def _apply(self, route, topic, payload, retain):
        try:
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise UnreadableValue("the payload is not UTF-8 text") from None
            if route.keypath is None:
                value = text.strip()
                if not value:
                    raise UnreadableValue("the payload is empty")
            else:
                value = self._lookup(route.keypath, text)
            watts = route.apply(value)
        except UnreadableValue as e:
            return self._unreadable(route, topic, payload, str(e))
        if self.complaints.open:
            self.complaints.resolved(
                (topic, route.plug.id), "MQTT {topic}: the {role} of plug {plug} is readable again",
                topic=topic, role=route.role, plug=route.plug.id)
        if self.debug:
            log.debug("MQTT {topic}{retained}: {role} {value!r} -> plug {plug} {watts} W",
                      topic=topic, retained=" (retained)" if retain else "", role=route.role,
                      value=value, plug=route.plug.id, watts=watts)
        return True

    def _unreadable(self, route, topic, payload, problem):
        self.complaints.problem(
            (topic, route.plug.id), "MQTT {topic}: cannot use {payload} for the {role} of "
            "plug {plug}: {problem}; the plug keeps {watts} W",
            topic=topic, payload=_show(payload), role=route.role, plug=route.plug.id,
            problem=problem, watts=route.plug.watts)
        return False

    @staticmethod
    def _lookup(keypath, text):
        """The value at C{keypath} in the JSON document C{text}."""
        try:
            document = json.loads(text)
        except ValueError:
            raise UnreadableValue("the payload is not JSON") from None
        value = lookup(document, keypath)
        if value is MISSING:
            raise UnreadableValue(f"the JSON has nothing at keypath {keypath!r}")
        return value


def _show(payload, limit=80):
    """A payload for a log line: short, and printable whatever its bytes."""
    data = bytes(payload)
    shown = repr(data[:limit])
    return shown + (f" (+{len(data) - limit} bytes)" if len(data) > limit else "")


def _why(failure):
    """A failure's message for the middle of a log line (without its final period)."""
    return failure.getErrorMessage().strip().rstrip(".")
