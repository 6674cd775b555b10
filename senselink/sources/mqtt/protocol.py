"""One MQTT subscriber session over one TCP (or TLS) connection: L{MqttClientProtocol}.

CONNECT, keepalive, deadlines and DISCONNECT are L{senselink.mqttclient.MqttSession}'s;
this module decides what a subscriber does: one SUBSCRIBE with every topic once
the broker accepted the session (answered within L{HANDSHAKE_TIMEOUT} seconds),
and a PUBACK for each QoS 1 message.

What the broker sends is handed on to the service (the session's progress)
and its router (the messages). Anything that is not MQTT 3.1.1 or not what
the broker may send at that point closes the connection with one log line.
"""

from twisted.internet.protocol import Factory

from senselink.log import Logger
from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import (SUBSCRIPTION_FAILURE, OversizedPublish, Puback, Publish,
                                    Suback)
from senselink.mqttclient import (CONNECT, CONNECTING, HANDSHAKE_TIMEOUT, PING, READY,
                                   SUBSCRIBE, SUBSCRIBING, MqttSession)

log = Logger()

SUBSCRIBE_ID = 1             # the packet identifier of the one SUBSCRIBE of a connection

__all__ = ("CONNECT", "CONNECTING", "HANDSHAKE_TIMEOUT", "MqttClientFactory",
           "MqttClientProtocol", "PING", "READY", "SUBSCRIBE", "SUBSCRIBE_ID", "SUBSCRIBING")


class MqttClientProtocol(MqttSession):
    """The client side of one MQTT session: a subscriber with a clean session."""

    def __init__(self, service):
        self.qos = service.settings.qos
        super().__init__(service, Decoder(BROKER, max_payload=service.max_payload,
                                          max_qos=self.qos))
        self.router = service.router
        self.subscribed = []       # topics the broker granted
        self.refused = []          # topics the broker refused

    def dataReceived(self, data):
        router = self.router
        applied = router.applied
        # Until the broker accepted the session a PUBLISH comes back as a value (an error).
        super().dataReceived(data)
        if router.applied != applied:
            self.service.touch()

    def _acknowledge(self, topic, payload, qos, retain, packet_id, dup):
        """A message at a QoS 1 subscription (the decoder's fast way): PUBACK, then apply it."""
        if qos:
            self.transport.write(encode.puback(packet_id))
        self.router.publish(topic, payload, qos, retain, packet_id, dup)

    def received(self, packet):
        packet_type = packet.__class__
        if packet_type is Suback:
            self._suback(packet)
        elif packet_type is OversizedPublish:
            if not self.accepted:
                return self.fail("a PUBLISH before its CONNACK")
            if packet.qos:
                self.transport.write(encode.puback(packet.packet_id))
            self.router.oversized(packet.topic, packet.head, packet.size)
        elif packet_type is Publish:
            self.fail("a PUBLISH before its CONNACK")
        elif packet_type is Puback:
            self.fail(f"a PUBACK for packet {packet.packet_id}, which was not sent")
        else:   # Malformed: the last packet of the stream
            self.fail(packet.reason)
        return None

    # -- the session --

    def accepted_now(self):
        # Messages go straight from the decoder to the router (a PUBACK first at QoS 1).
        self._on_publish = self._acknowledge if self.qos else self.router.publish
        topics = self.router.topics
        self.service._connection_ready(self)
        if not topics:
            self.service._subscribed(self, [])
            return
        qos = self.qos
        self.transport.write(encode.subscribe(SUBSCRIBE_ID, [(topic, qos) for topic in topics]))
        self.state = SUBSCRIBING
        self.expect(HANDSHAKE_TIMEOUT, SUBSCRIBE)

    def _suback(self, packet):
        topics = self.router.topics
        if self.state is not SUBSCRIBING or packet.packet_id != SUBSCRIBE_ID:
            return self.fail(f"a SUBACK for packet {packet.packet_id}, which was not sent")
        if len(packet.return_codes) != len(topics):
            return self.fail(f"a SUBACK with {len(packet.return_codes)} return codes for "
                             f"{len(topics)} topics")
        qos = self.qos
        if any(code != SUBSCRIPTION_FAILURE and code > qos for code in packet.return_codes):
            return self.fail(f"a SUBACK granting more than the QoS {qos} asked for")
        self.answered()
        for topic, code in zip(topics, packet.return_codes):
            (self.refused if code == SUBSCRIPTION_FAILURE else self.subscribed).append(topic)
        self.state = READY
        self.service._subscribed(self, self.refused)
        return None


class MqttClientFactory(Factory):
    """Builds one L{MqttClientProtocol} per connection of a source service."""

    noisy = False

    def __init__(self, service):
        self.service = service

    def buildProtocol(self, addr):
        return MqttClientProtocol(self.service)
