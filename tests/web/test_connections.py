"""The web interface against hostile peers: real connections on 127.0.0.1, deadlines on a Clock.

Each test does what a peer that wants to starve the daemon does: many
connections that never finish their headers, connections that send nothing,
a body that trickles, a body announced as 10 GB.
"""

import json
import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.web.api import MAX_BODY, LimitedRequest
from senselink.web.connections import (BODY_TIMEOUT, HEADERS_TIMEOUT, MAX_CONNECTIONS,
                                       RESERVED_DESCRIPTORS, ConnectionLimits, connection_limit)
from senselink.web.interface import IDLE_TIMEOUT, WebSite
from tests.support import wait_until
from tests.websupport import TOKEN, WebTestCase

SLOW_HEAD = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"     # never finished


class RawClient(protocol.Protocol):
    """Writes what it is told, keeps what it receives."""

    def __init__(self, first=b""):
        self.first = first
        self.received = b""
        self.closed = defer.Deferred()

    def connectionMade(self):
        if self.first:
            self.transport.write(self.first)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.closed.callback(None)

    @property
    def ended(self):
        return self.closed.called


@defer.inlineCallbacks
def connect(testcase, port, first=b"", source="127.0.0.1"):
    client = RawClient(first)
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0))
    yield connectProtocol(endpoint, client)
    testcase.addCleanup(lambda: client.ended or client.transport.abortConnection())
    return client


def answer(raw):
    """C{(status code, JSON body)} of one HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


class DescriptorBudgetTests(unittest.TestCase):

    def test_the_cap_leaves_descriptors_in_reserve(self):
        self.assertEqual(connection_limit(1024), MAX_CONNECTIONS)      # the usual soft limit
        self.assertEqual(connection_limit(512), (512 - RESERVED_DESCRIPTORS) // 3)
        self.assertEqual(connection_limit(100), 8)                     # never below 8
        for soft in (1024, 4096, 20000, 512):
            self.assertLessEqual(3 * connection_limit(soft) + RESERVED_DESCRIPTORS, soft)


class HostilePeerTests(WebTestCase):
    """A listener of the running daemon's web interface with small caps, timed by a Clock."""

    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        self.clock = Clock()
        self.limits = ConnectionLimits(self.clock, max_connections=6, max_per_peer=3)
        site = WebSite(self.service.web.web.root, requestFactory=LimitedRequest,
                       reactor=self.clock, limits=self.limits)
        listening = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        self.addCleanup(site.close_connections)
        self.port = listening.getHost().port

    @defer.inlineCallbacks
    def get_status(self, source="127.0.0.1"):
        client = yield connect(self, self.port, b"GET /api/status HTTP/1.1\r\nHost: x\r\n"
                               b"Connection: close\r\n\r\n", source)
        yield client.closed
        return answer(client.received)[0]

    @defer.inlineCallbacks
    def test_slow_headers_hold_no_slot_for_long(self):
        slow = []
        for _ in range(3):
            slow.append((yield connect(self, self.port, SLOW_HEAD, "127.0.0.2")))
        yield wait_until(lambda: len(self.limits.open) == 3, "three slow connections open")
        over = yield connect(self, self.port, SLOW_HEAD, "127.0.0.2")
        yield over.closed                                   # over the cap per peer: at once
        self.assertEqual(over.received, b"")
        self.assertEqual((yield self.get_status()), 200)    # another peer is served
        for _ in range(3):
            slow.append((yield connect(self, self.port, SLOW_HEAD, "127.0.0.3")))
        yield wait_until(lambda: len(self.limits.open) == 6, "six slow connections open")
        full = yield connect(self, self.port, SLOW_HEAD, "127.0.0.4")
        yield full.closed                                   # over the listener's cap
        self.assertEqual(self.limits.dropped, {"peer_limit": 1, "connection_limit": 1})
        self.clock.advance(HEADERS_TIMEOUT - 1)
        self.assertFalse(any(client.ended for client in slow))
        self.clock.advance(1)                               # their heads are late
        yield wait_until(lambda: all(client.ended for client in slow), "slow ones closed")
        self.assertEqual(self.limits.dropped["slow_headers"], 6)
        self.assertEqual([client.received for client in slow], [b""] * 6)
        self.assertEqual((yield self.get_status("127.0.0.2")), 200)
        self.assertEqual((len(self.limits.open), self.limits.open.by_peer), (0, {}))
        warnings = [line for line in self.log_text().splitlines() if "Web interface:" in line]
        self.assertEqual(len(warnings), 3)                  # one per reason, not per connection

    @defer.inlineCallbacks
    def test_a_connection_that_sends_nothing_is_closed(self):
        silent = yield connect(self, self.port)
        yield wait_until(lambda: len(self.limits.open), "the connection open")
        self.clock.advance(HEADERS_TIMEOUT)
        yield silent.closed
        # Between requests a kept-alive connection may be idle for the idle time-out.
        kept = yield connect(self, self.port, b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: b"\r\n\r\n" in kept.received, "the answer")
        self.clock.advance(IDLE_TIMEOUT - 1)
        self.assertFalse(kept.ended)
        self.clock.advance(1)
        yield kept.closed
        self.assertEqual(self.limits.dropped, {"slow_headers": 1, "idle": 1})

    @defer.inlineCallbacks
    def test_an_event_stream_outlives_every_time_out(self):
        self.service.web.web.events.interval = 0.05          # status events come sooner
        stream = yield connect(self, self.port, b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
        yield wait_until(lambda: b"event: snapshot" in stream.received, "the snapshot")
        self.clock.advance(IDLE_TIMEOUT + HEADERS_TIMEOUT + BODY_TIMEOUT)
        received = len(stream.received)
        yield wait_until(lambda: len(stream.received) > received, "a later event")
        self.assertFalse(stream.ended)
        self.assertEqual(self.limits.dropped, {})

    @defer.inlineCallbacks
    def test_a_trickling_body_is_cut_off(self):
        client = yield connect(self, self.port, b"PUT /api/plugs/ev HTTP/1.1\r\nHost: x\r\n"
                               b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
                               b"Content-Length: 20\r\n\r\n{\"power\"")

        def begun():
            return any(channel.requests and channel.requests[-1].content.getvalue()
                       == b'{"power"' for channel in self.limits.open)
        yield wait_until(begun, "the body begun")
        self.clock.advance(BODY_TIMEOUT - 1)
        self.assertFalse(client.ended)
        self.clock.advance(1)
        yield client.closed
        self.assertEqual(client.received, b"")
        self.assertEqual(self.limits.dropped, {"slow_body": 1})
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)


class HugeBodyTests(WebTestCase):
    """The daemon's own listener, real reactor: a body announced too large is never read."""

    def head(self, method=b"PUT", length=10 ** 10, extra=b""):
        return (method + b" /api/plugs/ev HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n" % length + extra + b"\r\n")

    @defer.inlineCallbacks
    def test_413_from_the_head_before_any_body(self):
        port = self.service.web.endpoint.port
        for method, extra in ((b"PUT", b""), (b"PUT", b"Expect: 100-continue\r\n"),
                              (b"GET", b"")):
            client = yield connect(self, port, self.head(method, extra=extra))
            yield client.closed                       # no body sent: answered and closed
            self.assertTrue(client.received.startswith(b"HTTP/1.1 413 "), client.received)
            self.assertNotIn(b"100 Continue", client.received)
            code, body = answer(client.received)
            self.assertEqual(body, {"error": f"request body larger than {MAX_BODY} bytes"})
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)

    @defer.inlineCallbacks
    def test_a_client_that_keeps_sending_is_not_read(self):
        sock = socket.create_connection(("127.0.0.1", self.service.web.endpoint.port))
        self.addCleanup(sock.close)
        sock.sendall(self.head())
        sock.setblocking(False)
        chunk = b"x" * 65536
        sent = [0]

        def refused():
            """Send until the daemon's side is gone (bounded: at most 64 MiB in all)."""
            while sent[0] < 64 * 2 ** 20:
                try:
                    sent[0] += sock.send(chunk)
                except BlockingIOError:
                    return False               # buffers full: let the reactor run
                except (BrokenPipeError, ConnectionResetError):
                    return True
            return True
        yield wait_until(refused, "the daemon closed the connection")
        self.assertLess(sent[0], 32 * 2 ** 20, "the daemon went on reading the body")
