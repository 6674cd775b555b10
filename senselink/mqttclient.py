"""What our MQTT clients share on Twisted: the connection to a broker and one session's
CONNECT, keepalive and deadlines. The mqtt source (a subscriber,
L{senselink.sources.mqtt.protocol}) and the publisher (L{senselink.publish.session})
build on it; the bytes are L{senselink.mqtt}'s.

 - L{broker_endpoint}: TCP (and TLS, with the CA and client certificate of the
   settings) to a L{senselink.config.broker.BrokerSettings}' broker;
 - L{retry_backoff}: the back-off both give C{ClientService} (exponential with
   jitter, at most L{MAX_RETRY_DELAY} seconds);
 - L{MqttSession}: CONNECT (with the subclass's will, if any) as the connection
   is made; L{HANDSHAKE_TIMEOUT} seconds for the CONNACK; PINGREQ every
   C{keepalive} seconds, and a PINGREQ not answered within half the keepalive
   closes the connection; DISCONNECT when the client stops. Timers run on the
   service's clock and die with the connection. Anything that is not MQTT 3.1.1
   closes the connection with one line from the service.

The service behind a session provides C{clock}, C{settings} (with C{username},
C{password}, C{keepalive}), C{client_id}, and hears of the session through
C{_refused(code)}, C{_protocol_error(reason)}, C{_no_answer(session, what,
seconds)} and C{_connection_lost(session, reason)}.
"""

import random

from twisted.application.internet import backoffPolicy
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Protocol

from senselink.config.broker import tls_certificates
from senselink.mqtt import encode
from senselink.mqtt.packets import Connack, ConnackCode, PingResp

MAX_RETRY_DELAY = 60.0
CONNECT_TIMEOUT = 10.0       # seconds for the TCP (and TLS) connection itself
HANDSHAKE_TIMEOUT = 10.0     # seconds for the CONNACK (and the answer that follows it)

CONNECTING, SUBSCRIBING, READY = "connecting", "subscribing", "ready"
# What an answer is awaited for (as the log line says it).
CONNECT, SUBSCRIBE, PING = "the CONNECT", "the SUBSCRIBE", "a PINGREQ"


def broker_endpoint(reactor, settings):
    """A client endpoint to the broker of C{settings} (a BrokerSettings): TLS with C{tls}."""
    from senselink.sources.tls import client_tls
    endpoint = HostnameEndpoint(reactor, settings.host, settings.broker_port,
                                timeout=CONNECT_TIMEOUT)
    if settings.tls is None:
        return endpoint
    trust, mine = tls_certificates(settings.tls)
    return wrapClientTLS(client_tls(settings.host, trust, mine), endpoint)


def retry_backoff():
    """Seconds before a retry, given the failed attempts in a row (1.5ⁿ s, jitter, ≤ 59+1 s)."""
    return backoffPolicy(initialDelay=1.0, maxDelay=MAX_RETRY_DELAY - 1.0, factor=1.5,
                         jitter=random.random)


class MqttSession(Protocol):
    """The client side of one MQTT session; a subclass says what follows the CONNACK
    (L{accepted}) and reads the other packets (L{received})."""

    will = None                # a senselink.mqtt.packets.Will for the CONNECT, or None

    def __init__(self, service, decoder):
        self.service = service
        self.clock = service.clock
        self.decoder = decoder
        self.state = CONNECTING
        self.accepted = False      # the broker accepted the CONNECT
        self.reported = False      # why the connection closes was logged already
        self.closing = False
        self._deadline = None      # a DelayedCall: the answer the broker owes
        self._awaiting = None      # what that answer is for
        self._on_publish = None    # the decoder's fast way for PUBLISH, once wanted
        self._ping = None          # a DelayedCall: the next PINGREQ

    # -- the connection --

    def connectionMade(self):
        service = self.service
        settings = service.settings
        keepalive = settings.keepalive
        self.transport.write(encode.connect(service.client_id, keepalive, settings.username,
                                            settings.password, will=self.will))
        self.expect(HANDSHAKE_TIMEOUT, CONNECT)
        if keepalive:
            self._ping = self.clock.callLater(keepalive, self._send_ping)

    def dataReceived(self, data):
        if self.closing:
            return
        feed = self.decoder.feed
        packets = feed(data, self._on_publish)
        while packets:
            for packet in packets:
                self._packet(packet)
                if self.closing:
                    return
            packets = feed(b"", self._on_publish)

    def _packet(self, packet):
        packet_type = packet.__class__
        if packet_type is PingResp:
            if self._awaiting is PING:
                self.answered()
        elif packet_type is Connack:
            self._connack(packet)
        else:
            self.received(packet)

    def connectionLost(self, reason):
        self.closing = True
        for call in (self._deadline, self._ping):
            if call is not None and call.active():
                call.cancel()
        self._deadline = self._ping = None
        self.service._connection_lost(self, reason)

    def disconnect(self):
        """Say goodbye to the broker (DISCONNECT) and close the connection."""
        if not self.closing:
            if self.accepted:
                self.transport.write(encode.disconnect())
            self.closing = True
            self.transport.loseConnection()

    # -- the session --

    def _connack(self, packet):
        if self.state is not CONNECTING:
            return self.fail("a second CONNACK")
        self.answered()
        if packet.return_code is not ConnackCode.ACCEPTED:
            self.reported = True
            self.service._refused(packet.return_code)
            return self._close()
        if packet.session_present:
            return self.fail("a CONNACK with a session present for a clean session")
        self.accepted = True
        self.state = READY
        self.accepted_now()
        return None

    def accepted_now(self):
        """The broker accepted the session: the subclass goes on (subscribes, publishes)."""

    def received(self, packet):
        """A packet besides CONNACK and PINGRESP (the subclass's); a Malformed ends the stream."""
        self.fail(getattr(packet, "reason", f"a {type(packet).__name__} here"))

    # -- timers --

    def expect(self, seconds, what):
        """The broker must answer within C{seconds}: else the connection is closed."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._awaiting = what
        self._deadline = self.clock.callLater(seconds, self._late, seconds, what)

    def answered(self):
        self._awaiting = None
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _late(self, seconds, what):
        self._deadline = self._awaiting = None
        self.reported = True
        self.service._no_answer(self, what, seconds)
        self._close()

    def _send_ping(self):
        keepalive = self.service.settings.keepalive
        self._ping = self.clock.callLater(keepalive, self._send_ping)
        self.transport.write(encode.pingreq())
        if self._deadline is None:
            self.expect(keepalive / 2.0, PING)

    # -- the end --

    def fail(self, reason):
        """The broker sent C{reason}: log it once and close the connection."""
        self.reported = True
        self.service._protocol_error(reason)
        self._close()

    def _close(self):
        if not self.closing:
            self.closing = True
            self.transport.abortConnection()
