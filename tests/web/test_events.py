"""Server push (C{/api/events}): events over a real connection, slow readers, limits, stop."""

import json
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import LoopingCall

from senselink.plugs import PlugSet

from tests.support import wait_until
from tests.websupport import WebTestCase


class EventReader(protocol.Protocol):
    """Sends C{GET /api/events} and parses the stream (chunked) into (name, document) pairs."""

    def __init__(self, path=b"/api/events", read=True):
        self.path = path
        self.read = read
        self.raw = b""
        self.closed = False

    def connectionMade(self):
        self.transport.write(b"GET " + self.path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        if not self.read:
            self.transport.pauseProducing()          # a reader that never reads

    def dataReceived(self, data):
        self.raw += data

    def connectionLost(self, reason):
        self.closed = True

    def events(self):
        out = []
        for block in self.raw.split(b"\n\n"):
            lines = dict(line.split(b": ", 1) for line in block.split(b"\n")
                         if line.startswith((b"event: ", b"data: ")))
            if b"event" in lines and b"data" in lines:
                try:
                    out.append((lines[b"event"].decode(), json.loads(lines[b"data"])))
                except ValueError:
                    pass                              # cut by a chunk boundary
        return out

    def named(self, name):
        return [document for event, document in self.events() if event == name]


class EventTests(WebTestCase):

    @defer.inlineCallbacks
    def connect(self, reader):
        port = self.service.web.endpoint.port
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), reader)
        self.addCleanup(lambda: reader.transport.abortConnection())
        return reader

    @property
    def hub(self):
        return self.service.web.web.events

    @defer.inlineCallbacks
    def test_snapshot_changes_and_status(self):
        reader = yield self.connect(EventReader())
        yield wait_until(lambda: reader.named("snapshot"), "the first snapshot")
        self.assertIn(b"Content-Type: text/event-stream", reader.raw)
        self.assertIn(b"retry: 2000", reader.raw)
        [first] = reader.named("snapshot")
        self.assertEqual([p["id"] for p in first["plugs"]],
                         ["fridge", "ev", "lamp", "meter", "lights"])
        ev = first["plugs"][1]
        self.assertEqual((ev["watts"], ev["mutable"]), (1500.0, True))
        self.assertEqual(ev["spark"][-1][1], 1500.0)
        self.assertIn("total_kwh", ev["energy"])
        self.assertEqual(first["status"]["plugs"], 5)
        self.service.set_power("ev", 42.0)
        changes = yield wait_until(lambda: reader.named("plugs"), "a plugs event", timeout=2)
        # The lamp is in the lights aggregate: setting it changes both.
        self.assertEqual([(p["id"], p["watts"]) for p in changes[0]["plugs"]], [("ev", 42.0)])
        self.service.set_power("lamp", 3.0)
        yield wait_until(lambda: len(reader.named("plugs")) == 2, "the lamp's change", timeout=2)
        self.assertEqual({p["id"] for p in reader.named("plugs")[1]["plugs"]}, {"lamp", "lights"})
        status = yield wait_until(lambda: reader.named("status"), "a status event")
        self.assertEqual(set(status[0]["energy"]), {"fridge", "ev", "lamp", "meter", "lights"})
        self.assertEqual(len(self.hub.clients), 1)

    @defer.inlineCallbacks
    def test_a_reload_sends_a_new_snapshot(self):
        reader = yield self.connect(EventReader())
        yield wait_until(lambda: reader.named("snapshot"), "the first snapshot")
        kept = [self.service.plugs["ev"]]
        self.service.replace_plugs(self.config, PlugSet(kept))
        yield wait_until(lambda: len(reader.named("snapshot")) == 2, "a snapshot after a reload")
        self.assertEqual([p["id"] for p in reader.named("snapshot")[1]["plugs"]], ["ev"])

    @defer.inlineCallbacks
    def test_a_slow_reader_is_bounded_then_dropped(self):
        hub = self.hub
        hub.drop_after = 1.0
        hub.interval = 0.01                         # many events, to fill buffers soon
        # A reader that never reads, with a small receive buffer.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", self.service.web.endpoint.port))
        sock.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        yield wait_until(lambda: hub.clients, "the stream to open")
        [client] = hub.clients
        # Small kernel buffers on the daemon's side too, so its transport's buffer fills.
        client.request.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        watts = [1.0]

        def churn():
            watts[0] += 1
            self.service.set_power("ev", watts[0])
        loop = LoopingCall(churn)
        loop.start(0.005)
        self.addCleanup(lambda: loop.running and loop.stop())
        yield wait_until(lambda: client.paused_since is not None, "the slow reader paused",
                         timeout=30)
        sent = client.sent
        yield wait_until(lambda: client not in hub.clients, "the slow reader dropped")
        loop.stop()
        self.assertEqual(client.sent, sent)         # nothing written to it while paused
        self.assertTrue(client.missed)
        self.assertLess(sent, 1024 * 1024)          # kernel buffers + 64 KiB, not more
        # Dropped: the connection is aborted (what it had not read is discarded).
        sock.setblocking(False)

        def ended():
            try:
                while sock.recv(65536):
                    pass
                return "end of stream"
            except BlockingIOError:
                return None
            except ConnectionResetError:
                return "reset"
        self.assertEqual((yield wait_until(ended, "the connection aborted")), "reset")

    @defer.inlineCallbacks
    def test_too_many_streams_and_stop(self):
        self.hub.max_clients = 1
        first = yield self.connect(EventReader())
        yield wait_until(lambda: first.named("snapshot"), "the first stream")
        second = yield self.connect(EventReader())
        yield wait_until(lambda: b"\r\n\r\n{" in second.raw or second.closed, "the answer")
        self.assertIn(b" 503 ", second.raw.split(b"\r\n", 1)[0])
        self.assertIn(b"too many event streams", second.raw)
        yield self.service.web.disownServiceParent()    # the web interface stops
        yield wait_until(lambda: first.closed, "the stream closed by the stop")
        self.assertEqual(self.hub.clients, set())
