"""One MQTT subscriber session, without I/O: L{SubscriberSession}.

CONNECT, keepalive and deadlines are L{senselink.mqttsession.MqttSession}'s;
this module decides what a subscriber does: one SUBSCRIBE with every topic
once the broker accepted the session (answered within L{HANDSHAKE_TIMEOUT}
seconds: L{Subscribed}), and a PUBACK for each QoS 1 message.

Messages go straight from the decoder to C{on_message} (the router's
C{publish}): the hot path makes no event and no value per message. The
PUBACKs of the messages of one C{receive} leave in one C{Send}. A message
whose payload is over the limit is an L{Oversized} event.
"""

from dataclasses import dataclass

from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import SUBSCRIPTION_FAILURE, OversizedPublish, Puback, Publish, Suback
from senselink.mqttsession import HANDSHAKE_TIMEOUT, READY, SUBSCRIBE, SUBSCRIBING, MqttSession
from senselink.sessionoutputs import Send

SUBSCRIBE_ID = 1             # the packet identifier of the one SUBSCRIBE of a connection


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The broker answered the SUBSCRIBE: the topics it C{granted} and those it C{refused}."""
    granted: tuple
    refused: tuple


@dataclass(frozen=True, slots=True)
class Oversized:
    """A message whose payload was over the limit: its first bytes (C{head}) and C{size}."""
    topic: str
    head: bytes
    size: int


class SubscriberSession(MqttSession):
    """The client side of one MQTT session: a subscriber with a clean session."""

    def __init__(self, settings, client_id, topics, on_message, max_payload):
        """
        @param settings: the source's settings (C{qos}, C{keepalive}, user and password).
        @param topics: the topic filters to subscribe to.
        @param on_message: called with C{topic, payload, qos, retain, packet_id, dup}
            of each message, as the decoder reads it.
        """
        self.qos = settings.qos
        super().__init__(settings, client_id,
                         Decoder(BROKER, max_payload=max_payload, max_qos=self.qos))
        self.topics = list(topics)
        self.on_message = on_message
        self.subscribed = []       # topics the broker granted
        self.refused = []          # topics the broker refused
        self.acks = []             # packet ids of QoS 1 messages read, PUBACK not sent yet

    def acknowledge(self, topic, payload, qos, retain, packet_id, dup):
        """A message at a QoS 1 subscription (the decoder's fast way): PUBACK, then apply it."""
        if qos:
            self.acks.append(packet_id)
        self.on_message(topic, payload, qos, retain, packet_id, dup)

    def finish(self, out):
        acks = self.acks
        if acks:
            self.acks = []
            out.append(Send(b"".join([b"\x40\x02" + packet_id.to_bytes(2, "big")
                                      for packet_id in acks])))
        return out

    def received(self, packet, now, out):
        if self.acks:
            self.finish(out)       # PUBACKs go out in the order of the stream
        packet_type = packet.__class__
        if packet_type is Suback:
            return self.suback(packet, out)
        if packet_type is OversizedPublish:
            if not self.accepted:
                return self.fail(out, "a PUBLISH before its CONNACK")
            if packet.qos:
                out.append(Send(encode.puback(packet.packet_id)))
            out.append(Oversized(packet.topic, packet.head, packet.size))
            return out
        if packet_type is Publish:
            return self.fail(out, "a PUBLISH before its CONNACK")
        if packet_type is Puback:
            return self.fail(out, f"a PUBACK for packet {packet.packet_id}, which was not sent")
        return self.fail(out, packet.reason)      # Malformed: the last packet of the stream

    # -- the session --

    def accepted_now(self, now, out):
        # Messages go straight from the decoder to on_message (a PUBACK first at QoS 1).
        self.on_publish = self.acknowledge if self.qos else self.on_message
        topics = self.topics
        if not topics:
            out.append(Subscribed((), ()))
            return
        qos = self.qos
        out.append(Send(encode.subscribe(SUBSCRIBE_ID, [(topic, qos) for topic in topics])))
        self.state = SUBSCRIBING
        self.expect(now, HANDSHAKE_TIMEOUT, SUBSCRIBE)

    def suback(self, packet, out):
        topics = self.topics
        if self.state is not SUBSCRIBING or packet.packet_id != SUBSCRIBE_ID:
            return self.fail(out, f"a SUBACK for packet {packet.packet_id}, which was not sent")
        if len(packet.return_codes) != len(topics):
            return self.fail(out, f"a SUBACK with {len(packet.return_codes)} return codes for "
                                  f"{len(topics)} topics")
        qos = self.qos
        if any(code != SUBSCRIPTION_FAILURE and code > qos for code in packet.return_codes):
            return self.fail(out, f"a SUBACK granting more than the QoS {qos} asked for")
        self.answered()
        for topic, code in zip(topics, packet.return_codes):
            (self.refused if code == SUBSCRIPTION_FAILURE else self.subscribed).append(topic)
        self.state = READY
        out.append(Subscribed(tuple(self.subscribed), tuple(self.refused)))
        return out
