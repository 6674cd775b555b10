"""Hand-written misbehaving MQTT brokers on 127.0.0.1, for the mqtt source's tests.

Each answers our CONNECT with a CONNACK and our SUBSCRIBE with a SUBACK
granting what was asked, then misbehaves as its C{script} says:

 - C{"flood"}: stops reading and sends QoS 1 PUBLISHes (C{home/lamp}, C{1})
   as fast as the socket takes them, until C{limit} bytes are written; its
   receive buffer is small, so the client's PUBACKs back up soon;
 - C{"pingresp"}: sends a PINGRESP every second and never answers a PINGREQ;
 - C{"drop"}: closes the connection right after the SUBACK;
 - C{"topics"}: sends C{limit} QoS 0 PUBLISHes of C{nonsense}, each on a topic of its
   own (C{home/<n>/state}), then C{home/lamp} C{1} and stays.

C{connections} counts the connections, C{written} the flood's bytes.
"""

import socket

from zope.interface import implementer

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol

from senselink.mqtt import encode
from senselink.mqtt.decode import CLIENT, Decoder
from senselink.mqtt.packets import Connect, Subscribe

RECEIVE_BUFFER = 4096        # bytes: the flooding broker's SO_RCVBUF (the kernel doubles it)
CHUNK = 1000                 # PUBLISHes per write of the flood


@implementer(IPushProducer)
class _Misbehaving(Protocol):

    def connectionMade(self):
        self.factory.connections += 1
        self.factory.current = self
        self.decoder = Decoder(CLIENT)
        self.paused = False
        self.pinger = None

    def dataReceived(self, data):
        for packet in self.decoder.feed(data):
            if packet.__class__ is Connect:
                self.transport.write(encode.connack())
            elif packet.__class__ is Subscribe:
                self.transport.write(encode.suback(packet.packet_id,
                                                   [qos for _, qos in packet.topics]))
                self.subscribed(packet)

    def subscribed(self, packet):
        script = self.factory.script
        if script == "flood":
            self.transport.pauseProducing()          # reads nothing more, ever
            self.transport.registerProducer(self, True)
            self.resumeProducing()
        elif script == "pingresp":
            self.pinger = task.LoopingCall(self.transport.write, encode.pingresp())
            self.pinger.start(1.0, now=False)
        elif script == "drop":
            self.transport.loseConnection()
        elif script == "topics":
            self.transport.write(b"".join(encode.publish(f"home/{n}/state", b"nonsense")
                                          for n in range(self.factory.limit))
                                 + encode.publish("home/lamp", b"1"))

    # -- the flood, as fast as the socket takes it --

    def resumeProducing(self):
        self.paused = False
        reactor.callLater(0, self._pump)

    def pauseProducing(self):
        self.paused = True

    def stopProducing(self):
        self.paused = True

    def _pump(self):
        factory = self.factory
        while not self.paused and factory.written < factory.limit:
            factory.written += len(factory.chunk)
            self.transport.write(factory.chunk)

    def connectionLost(self, reason):
        self.paused = True
        if self.pinger is not None and self.pinger.running:
            self.pinger.stop()
        self.factory.lost += 1


@defer.inlineCallbacks
def started_fake_broker(testcase, script, limit=0):
    """Listen on 127.0.0.1 (a free port) with the misbehaving broker C{script}."""
    factory = Factory.forProtocol(_Misbehaving)
    factory.script = script
    factory.limit = limit
    factory.connections = factory.lost = factory.written = 0
    factory.current = None
    factory.chunk = b"".join(encode.publish("home/lamp", b"1", qos=1, packet_id=i % 0xFFFF + 1)
                             for i in range(CHUNK))
    port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    # Accepted sockets inherit it: set before any connection, it shapes the window too.
    port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    testcase.addCleanup(port.stopListening)

    def drop():
        if factory.current is not None and factory.current.transport.connected:
            factory.current.transport.abortConnection()
    testcase.addCleanup(drop)
    factory.port = port.getHost().port
    return factory
