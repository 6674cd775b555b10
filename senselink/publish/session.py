"""One publishing MQTT session: L{PublisherSession}.

CONNECT (with the availability topic's C{offline} as a retained QoS 1 will),
keepalive and deadlines are L{senselink.mqttclient.MqttSession}'s. Once the
broker accepted the session, the service queues everything it has to say
and the session sends the outbox: QoS 0 messages at once, QoS 1 ones with a
packet identifier, at most L{MAX_INFLIGHT} awaiting their PUBACK (the rest
wait in the outbox, where a newer value still replaces them). Messages not
acknowledged when the connection ends go back to the outbox.
"""

from twisted.internet.protocol import Factory

from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import Puback, Will
from senselink.mqttclient import MqttSession

MAX_INFLIGHT = 64            # QoS 1 messages awaiting their PUBACK, per connection
MAX_PAYLOAD = 1024           # bytes of a PUBLISH a broker sends us (we subscribe to nothing)


class PublisherSession(MqttSession):
    """The client side of one publishing session (a clean session, no subscriptions)."""

    def __init__(self, service):
        super().__init__(service, Decoder(BROKER, max_payload=MAX_PAYLOAD, max_qos=0))
        self.will = Will(service.status_topic, service.offline, 1, True)
        self.outbox = service.outbox
        self.inflight = {}         # packet id -> (topic, Message)
        self._next_id = 0

    def accepted_now(self):
        self.service._connection_ready(self)
        self.send()

    def received(self, packet):
        if packet.__class__ is Puback:
            if self.inflight.pop(packet.packet_id, None) is None:
                return self.fail(f"a PUBACK for packet {packet.packet_id}, which is not "
                                 f"awaiting one")
            self.send()
        else:   # a PUBLISH (we subscribe to nothing) or Malformed: the end of the stream
            self.fail(getattr(packet, "reason", None) or
                      f"a {type(packet).__name__}, which a publisher never asked for")
        return None

    def send(self):
        """Send what waits in the outbox, as far as the PUBACKs awaited allow."""
        if not self.accepted or self.closing:
            return
        outbox = self.outbox
        write = self.transport.write
        while True:
            item = outbox.peek()
            if item is None:
                return
            topic, message = item
            packet_id = None
            if message.qos:
                if len(self.inflight) >= MAX_INFLIGHT:
                    return
                packet_id = self._packet_id()
                self.inflight[packet_id] = (topic, message)
            outbox.take()
            write(encode.publish(topic, message.payload, message.qos, message.retain, packet_id))

    def _packet_id(self):
        while True:
            self._next_id = self._next_id % 0xFFFF + 1
            if self._next_id not in self.inflight:
                return self._next_id

    def connectionLost(self, reason):
        for topic, message in self.inflight.values():
            self.outbox.put_back(topic, message)
        self.inflight.clear()
        super().connectionLost(reason)


class PublisherFactory(Factory):
    """Builds one L{PublisherSession} per connection of the publisher."""

    noisy = False

    def __init__(self, service):
        self.service = service

    def buildProtocol(self, addr):
        return PublisherSession(self.service)
