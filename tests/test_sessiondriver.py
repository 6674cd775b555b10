"""SessionDriver: outputs reach the link and the service, one timer follows the session's
deadline, and a peer that does not read stops our reading and is dropped.

The timer tests use a scripted session and C{task.Clock}; the flow-control
test uses real TCP sockets on 127.0.0.1 with a peer that floods and never reads.
"""

from twisted.internet import defer, protocol, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.sessiondriver import (Abort, Close, Send, SessionDriver, Stalled, TransportLink,
                                     drive)
from tests.support import wait_until


class Script:
    """A session that answers each call with the outputs the test queued, and a deadline."""

    def __init__(self):
        self.deadline = None
        self.calls = []
        self.answers = {}

    def _answer(self, name, *args):
        self.calls.append((name,) + args)
        return list(self.answers.pop(name, ()))

    def start(self, now):
        return self._answer("start", now)

    def receive(self, item, now):
        return self._answer("receive", item, now)

    def timeout(self, now):
        return self._answer("timeout", now)

    def lost(self, now):
        return self._answer("lost", now)

    def next_deadline(self):
        return self.deadline


class Link:
    def __init__(self):
        self.did = []

    def send(self, data):
        self.did.append(("send", data))

    def close(self, code=None):
        self.did.append(("close", code))

    def abort(self):
        self.did.append(("abort",))

    def pause_reading(self):
        self.did.append(("pause",))

    def resume_reading(self):
        self.did.append(("resume",))


class DriverTests(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.session = Script()
        self.link = Link()
        self.events = []
        self.driver = SessionDriver(self.session, self.link, self.clock, self.events.append,
                                    stall_timeout=30.0)

    def test_outputs_in_order(self):
        self.session.answers["start"] = [Send(b"hello"), "ready", Close(1000)]
        self.driver.start()
        self.assertEqual(self.link.did, [("send", b"hello"), ("close", 1000)])
        self.assertEqual(self.events, ["ready"])

    def test_one_timer_follows_the_deadline(self):
        self.session.deadline = 10.0
        self.driver.start()
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [10.0])
        self.session.deadline = 4.0
        self.driver.receive(b"x")
        self.assertEqual([c.getTime() for c in self.clock.getDelayedCalls()], [4.0])
        self.clock.advance(3.9)
        self.assertNotIn(("timeout", 3.9), self.session.calls)
        self.session.deadline = None
        self.session.answers["timeout"] = [Abort("late")]
        self.clock.advance(0.1)
        self.assertEqual(self.session.calls[-1], ("timeout", 4.0))
        self.assertEqual(self.link.did, [("abort",)])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # After an abort nothing more reaches the session or the link.
        self.driver.receive(b"late bytes")
        self.assertEqual(self.session.calls[-1], ("timeout", 4.0))

    def test_lost_cancels_and_passes_events_only(self):
        self.session.deadline = 5.0
        self.driver.start()
        self.session.answers["lost"] = [Send(b"no"), "ended"]
        self.driver.lost()
        self.assertEqual(self.events, ["ended"])
        self.assertEqual(self.link.did, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.driver.lost()
        self.assertEqual(self.events, ["ended"])

    def test_a_full_buffer_stops_reading_and_a_stall_drops(self):
        self.driver.start()
        self.driver.pauseProducing()
        self.driver.pauseProducing()
        self.assertEqual(self.link.did, [("pause",)])
        self.clock.advance(29.0)
        self.driver.resumeProducing()
        self.assertEqual(self.link.did, [("pause",), ("resume",)])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.driver.pauseProducing()
        self.clock.advance(30.0)
        self.assertEqual(self.events, [Stalled(30.0)])
        self.assertEqual(self.link.did[-1], ("abort",))


class Flood(protocol.Protocol):
    """The peer: writes without end and never reads."""

    def connectionMade(self):
        self.transport.pauseProducing()       # never read
        self.factory.peers.append(self)
        self.written = 0
        self.pump()

    def pump(self):
        if self.transport.disconnected:
            return
        chunk = b"x" * 65536
        self.transport.write(chunk)
        self.written += len(chunk)
        if self.written < 64 * 1024 * 1024:
            self.call = reactor.callLater(0, self.pump)

    def connectionLost(self, reason):
        self.factory.lost.append(reason)
        call = getattr(self, "call", None)
        if call is not None and call.active():
            call.cancel()


class Echo:
    """A session that answers every byte it gets with as many bytes."""

    def __init__(self):
        self.answered = 0

    def start(self, now):
        return []

    def receive(self, data, now):
        self.answered += len(data)
        return [Send(b"y" * len(data))]

    def timeout(self, now):
        return []

    def lost(self, now):
        return ["lost"]

    def next_deadline(self):
        return None


class Client(protocol.Protocol):
    def connectionMade(self):
        self.driver = drive(self.factory.session, self.transport, TransportLink(self.transport),
                            self.factory.clock, self.factory.events.append, stall_timeout=30.0)
        self.driver.start()

    def dataReceived(self, data):
        self.driver.receive(data)

    def connectionLost(self, reason):
        self.driver.lost()


class FlowControlTests(unittest.TestCase):
    """A real peer that floods and never reads: we stop reading, then drop it."""

    @defer.inlineCallbacks
    def test_a_peer_that_does_not_read_is_dropped(self):
        server = protocol.Factory.forProtocol(Flood)
        server.peers, server.lost = [], []
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = protocol.ClientFactory.forProtocol(Client)
        client.session, client.clock, client.events = Echo(), Clock(), []
        connector = reactor.connectTCP("127.0.0.1", port.getHost().port, client)
        self.addCleanup(connector.disconnect)
        yield wait_until(lambda: server.peers and client.clock.getDelayedCalls(),
                         what="our reading to stop")
        answered = client.session.answered
        # Reading stopped: what we answered is bounded by what the kernel buffers took.
        self.assertLess(answered, 16 * 1024 * 1024)
        self.assertLess(server.peers[0].written, 64 * 1024 * 1024)
        client.clock.advance(30.0)
        self.assertEqual(client.events[0], Stalled(30.0))
        yield wait_until(lambda: server.lost, what="the peer's connection to end")
        self.assertEqual(client.events[-1], "lost")
        self.assertEqual(client.session.answered, answered)
