"""One publishing MQTT session, without I/O: L{PublisherSession}.

CONNECT (with the availability topic's C{offline} as a retained QoS 1 will),
keepalive and deadlines are L{senselink.mqttsession.MqttSession}'s. Once the
broker accepted the session (L{senselink.mqttsession.Accepted}), the service
queues everything it has to say and hands the session L{FLUSH}; the session
sends the outbox: QoS 0 messages at once, QoS 1 ones with a packet
identifier, at most L{MAX_INFLIGHT} awaiting their PUBACK (the rest wait in
the outbox, where a newer value still replaces them; each PUBACK lets more
go). Messages not acknowledged when the connection ends go back to the outbox.
"""

from dataclasses import dataclass

from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import Puback, Will
from senselink.mqttsession import MqttSession
from senselink.sessionoutputs import Send

MAX_INFLIGHT = 64            # QoS 1 messages awaiting their PUBACK, per connection
MAX_PAYLOAD = 1024           # bytes of a PUBLISH a broker sends us (we subscribe to nothing)


@dataclass(frozen=True, slots=True)
class Flush:
    """An input from the service: the outbox has news; send what may go."""


FLUSH = Flush()


class PublisherSession(MqttSession):
    """The client side of one publishing session (a clean session, no subscriptions)."""

    def __init__(self, settings, client_id, will_topic, offline, outbox):
        """
        @param will_topic, offline: the retained QoS 1 will (the availability topic).
        @param outbox: the service's L{senselink.publish.outbox.Outbox}, shared.
        """
        super().__init__(settings, client_id,
                         Decoder(BROKER, max_payload=MAX_PAYLOAD, max_qos=0))
        self.will = Will(will_topic, offline, 1, True)
        self.outbox = outbox
        self.inflight = {}         # packet id -> (topic, Message)
        self._next_id = 0

    def command(self, item, now):
        if item.__class__ is Flush:
            return self.send([])
        return super().command(item, now)

    def received(self, packet, now, out):
        if packet.__class__ is Puback:
            if self.inflight.pop(packet.packet_id, None) is None:
                return self.fail(out, f"a PUBACK for packet {packet.packet_id}, which is not "
                                      f"awaiting one")
            return self.send(out)
        # A PUBLISH (we subscribe to nothing) or Malformed: the end of the stream.
        return self.fail(out, getattr(packet, "reason", None) or
                         f"a {type(packet).__name__}, which a publisher never asked for")

    def send(self, out):
        """Send what waits in the outbox, as far as the PUBACKs awaited allow (one Send)."""
        if not self.accepted or self.closing:
            return out
        outbox = self.outbox
        inflight = self.inflight
        data = []
        while True:
            item = outbox.peek()
            if item is None:
                break
            topic, message = item
            packet_id = None
            if message.qos:
                if len(inflight) >= MAX_INFLIGHT:
                    break
                packet_id = self._packet_id()
                inflight[packet_id] = (topic, message)
            outbox.take()
            data.append(encode.publish(topic, message.payload, message.qos, message.retain,
                                       packet_id))
        if data:
            out.append(Send(b"".join(data)))
        return out

    def _packet_id(self):
        while True:
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self.inflight:
                return self._next_id

    def lost(self, now):
        for topic, message in self.inflight.values():
            self.outbox.put_back(topic, message)
        self.inflight.clear()
        return super().lost(now)
