"""One MQTT session over one TCP (or TLS) connection: L{MqttClientProtocol}.

The bytes are L{senselink.mqtt}'s; this module decides what to send when:
CONNECT as the connection is made, one SUBSCRIBE with every topic once the
broker accepted it, a PUBACK for each QoS 1 message, PINGREQ every
C{keepalive} seconds, DISCONNECT when the source stops. Timers run on the
service's clock and die with the connection:

 - the broker has L{HANDSHAKE_TIMEOUT} seconds to answer the CONNECT and
   the SUBSCRIBE;
 - a PINGREQ not answered within half the keepalive closes the connection,
   so a broker that stops answering is noticed within 1.5 keepalives of its
   last answer, and C{ClientService} connects again.

What the broker sends is handed on to the service (the session's progress)
and its router (the messages). Anything that is not MQTT 3.1.1 or not what
the broker may send at that point closes the connection with one log line.
"""

from twisted.internet.protocol import Factory, Protocol

from senselink.log import Logger
from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import (SUBSCRIPTION_FAILURE, Connack, ConnackCode,
                                    OversizedPublish, PingResp, Puback, Publish, Suback)

log = Logger()

HANDSHAKE_TIMEOUT = 10.0     # seconds for the CONNACK, then for the SUBACK
SUBSCRIBE_ID = 1             # the packet identifier of the one SUBSCRIBE of a connection

CONNECTING, SUBSCRIBING, READY = "connecting", "subscribing", "ready"
# What an answer is awaited for (as the log line says it).
CONNECT, SUBSCRIBE, PING = "the CONNECT", "the SUBSCRIBE", "a PINGREQ"


class MqttClientProtocol(Protocol):
    """The client side of one MQTT session: a subscriber with a clean session."""

    def __init__(self, service):
        self.service = service
        self.router = service.router
        self.qos = service.settings.qos
        self.clock = service.clock
        self.decoder = Decoder(BROKER, max_payload=service.max_payload,
                               max_qos=self.qos)
        self.state = CONNECTING
        self.accepted = False      # the broker accepted the CONNECT
        self.reported = False      # why the connection closes was logged already
        self.closing = False
        self.subscribed = []       # topics the broker granted
        self.refused = []          # topics the broker refused
        self._deadline = None      # a DelayedCall: the answer the broker owes
        self._awaiting = None      # what that answer is for
        self._on_publish = None    # until the CONNACK: a PUBLISH is an error
        self._ping = None          # a DelayedCall: the next PINGREQ

    # -- the connection --

    def connectionMade(self):
        service = self.service
        settings = service.settings
        keepalive = settings.keepalive
        self.transport.write(encode.connect(
            service.client_id, keepalive, settings.username, settings.password))
        self._expect(HANDSHAKE_TIMEOUT, CONNECT)
        if keepalive:
            self._ping = self.clock.callLater(keepalive, self._send_ping)

    def dataReceived(self, data):
        if self.closing:
            return
        router = self.router
        applied = router.applied
        feed = self.decoder.feed
        # Until the broker accepted the session a PUBLISH comes back as a value (an error).
        packets = feed(data, self._on_publish)
        while packets:
            for packet in packets:
                self._packet(packet)
                if self.closing:
                    break
            if self.closing:
                break
            packets = feed(b"", self._on_publish)
        if router.applied != applied:
            self.service.touch()

    def _acknowledge(self, topic, payload, qos, retain, packet_id, dup):
        """A message at a QoS 1 subscription (the decoder's fast way): PUBACK, then apply it."""
        if qos:
            self.transport.write(encode.puback(packet_id))
        self.router.publish(topic, payload, qos, retain, packet_id, dup)

    def _packet(self, packet):
        kind = packet.__class__
        if kind is PingResp:
            if self._awaiting is PING:
                self._answered()
        elif kind is Connack:
            self._connack(packet)
        elif kind is Suback:
            self._suback(packet)
        elif kind is OversizedPublish:
            if not self.accepted:
                return self._fail("a PUBLISH before its CONNACK")
            if packet.qos:
                self.transport.write(encode.puback(packet.packet_id))
            self.router.oversized(packet.topic, packet.head, packet.size)
        elif kind is Publish:
            self._fail("a PUBLISH before its CONNACK")
        elif kind is Puback:
            self._fail(f"a PUBACK for packet {packet.packet_id}, which was not sent")
        else:   # Malformed: the last packet of the stream
            self._fail(packet.reason)
        return None

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
            return self._fail("a second CONNACK")
        self._answered()
        if packet.return_code is not ConnackCode.ACCEPTED:
            self.reported = True
            self.service._refused(packet.return_code)
            return self._close()
        if packet.session_present:
            return self._fail("a CONNACK with a session present for a clean session")
        self.accepted = True
        # Messages go straight from the decoder to the router (a PUBACK first at QoS 1).
        self._on_publish = self._acknowledge if self.qos else self.router.publish
        topics = self.router.topics
        self.service._connection_ready(self)
        if not topics:
            self.state = READY
            self.service._subscribed(self, [])
            return None
        qos = self.qos
        self.transport.write(encode.subscribe(SUBSCRIBE_ID, [(topic, qos) for topic in topics]))
        self.state = SUBSCRIBING
        self._expect(HANDSHAKE_TIMEOUT, SUBSCRIBE)
        return None

    def _suback(self, packet):
        topics = self.router.topics
        if self.state is not SUBSCRIBING or packet.packet_id != SUBSCRIBE_ID:
            return self._fail(f"a SUBACK for packet {packet.packet_id}, which was not sent")
        if len(packet.return_codes) != len(topics):
            return self._fail(f"a SUBACK with {len(packet.return_codes)} return codes for "
                              f"{len(topics)} topics")
        qos = self.qos
        if any(code != SUBSCRIPTION_FAILURE and code > qos for code in packet.return_codes):
            return self._fail(f"a SUBACK granting more than the QoS {qos} asked for")
        self._answered()
        for topic, code in zip(topics, packet.return_codes):
            (self.refused if code == SUBSCRIPTION_FAILURE else self.subscribed).append(topic)
        self.state = READY
        self.service._subscribed(self, self.refused)
        return None

    # -- timers --

    def _expect(self, seconds, what):
        """The broker must answer within C{seconds}: else the connection is closed."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._awaiting = what
        self._deadline = self.clock.callLater(seconds, self._late, seconds, what)

    def _answered(self):
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
            self._expect(keepalive / 2.0, PING)

    # -- the end --

    def _fail(self, reason):
        """The broker sent C{reason}: log it once and close the connection."""
        self.reported = True
        self.service._protocol_error(reason)
        self._close()

    def _close(self):
        if not self.closing:
            self.closing = True
            self.transport.abortConnection()


class MqttClientFactory(Factory):
    """Builds one L{MqttClientProtocol} per connection of a source service."""

    noisy = False

    def __init__(self, service):
        self.service = service

    def buildProtocol(self, addr):
        return MqttClientProtocol(self.service)
