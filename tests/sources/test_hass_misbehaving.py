"""A Home Assistant that misbehaves, over real sockets (issue 27): each test states its bound.

The server is the Autobahn server of L{tests.hass_server}, told to misbehave;
the client's timers (session deadlines, the driver, reconnection) run on a
C{task.Clock}, so time passes only when a test says so.
"""

import json
import socket
import textwrap

from twisted.internet import defer, protocol, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest


from tests.hass_server import FakeHomeAssistant, State, frame_header, start_hass_source
from tests.support import sense, start_service, udp_client

TOKEN = "misbehaving-home-token"
HEATER, LAMP = "sensor.heater_power", "light.desk_lamp"
PLUGS = """
- Heater:
    entity_id: sensor.heater_power
- Lamp:
    entity_id: light.desk_lamp
    max_watts: 40
    attribute: brightness
    attribute_max: 255
"""
LINE_LIMIT = 600       # characters in one log line: an excerpt, its size and our words


@defer.inlineCallbacks
def until(predicate, what, timeout=10.0):
    """Let the real reactor run until C{predicate()}; fail after C{timeout} s (a bound)."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        yield task.deferLater(reactor, 0.005, lambda: None)


def pause(seconds=0.05):
    """Real time for bytes on the loopback to arrive."""
    return task.deferLater(reactor, seconds, lambda: None)


class MisbehavingCase(unittest.TestCase):

    def setUp(self):
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        self.addCleanup(self._stop_home)
        self.home.set_state(HEATER, "100")
        self.home.set_state(LAMP, "on", {"brightness": 255})
        self.clock = task.Clock()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def _stop_home(self):
        if self.home.port is not None:
            return self.home.stop()

    def start(self, extra="", url=None, **kwargs):
        text = (f"sources:\n  - hass:\n      url: {url or self.home.url}\n"
                f"      auth_token: {TOKEN}\n{textwrap.indent(extra, ' ' * 6)}"
                f"      plugs:\n{textwrap.indent(textwrap.dedent(PLUGS).strip(), ' ' * 8)}\n")
        self.plugs, self.service = start_hass_source(self, text, self.clock, **kwargs)
        return self.service

    def ready(self, n=1):
        return until(lambda: self.service.sessions >= n and self.service.session is not None
                     and self.service.session.ready
                     and len(self.service.session.cache) == 2, "the subscription")

    def server(self):
        return self.home.connections[-1]

    def ended(self, server):
        """Until both ends have seen the end of C{server}'s connection (the newest)."""
        return until(lambda: server in self.home.closed and self.service.connection.driver.gone,
                     "the end of the connection")

    def roundtrip(self, watts=123.0):
        """Until the client has read every message the server sent so far: the server sets
        the heater to C{watts} last, and the plug shows it."""
        self.home.set_state(HEATER, str(watts))
        return until(lambda: self.plugs["Heater"].watts == watts, f"the heater at {watts} W")

    def lines(self, part="", level=LogLevel.info):
        """Our log lines (the senselink namespace) at C{level} or above containing C{part}."""
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace", "").startswith("senselink")
                and e.get("log_level", LogLevel.info) >= level and part in formatEvent(e)]

    def assertShortLines(self):
        """Every line of ours is short, one line, and gives no unclean "None" reason."""
        for line in self.lines(level=LogLevel.debug):
            self.assertLess(len(line), LINE_LIMIT, line[:LINE_LIMIT])
            self.assertNotIn("\n", line)
            self.assertNotIn("uncleanly", line)
        self.assertEqual([e for e in self.events if e.get("log_level") == LogLevel.critical], [])


class AuthenticationAgainTests(MisbehavingCase):
    """Item 9: each message only in the state where the protocol allows it."""

    @defer.inlineCallbacks
    def test_auth_ok_and_auth_required_after_authentication(self):
        self.start()
        yield self.ready()
        server = self.server()
        for _ in range(10_000):
            server.send({"type": "auth_ok", "ha_version": "2024.1.6"})
        yield self.ended(server)
        # Bound: one line, one subscription, one "Connected", no token sent again.
        self.assertEqual(len(self.lines("sent auth_ok after authentication")), 1)
        self.assertEqual(len(self.lines("Connected to Home Assistant")), 1)
        self.assertEqual([c["type"] for c in server.received], ["subscribe_entities"])
        self.assertEqual(len(self.home.auth_messages), 1)
        self.assertFalse(self.service.connected)
        self.clock.advance(10)
        yield self.ready(2)
        server = self.server()
        for _ in range(10_000):
            server.send({"type": "auth_required", "ha_version": "2024.1.6"})
        yield self.ended(server)
        self.assertEqual(len(self.lines("sent auth_required after authentication")), 1)
        self.assertEqual(len(self.home.auth_messages), 2)       # one per connection
        self.assertEqual(len(self.lines("Connected to Home Assistant")), 2)
        self.assertShortLines()


class EntityFloodTests(MisbehavingCase):
    """Items 2 and 13: only the configured entities are kept, added, changed or removed."""

    @defer.inlineCallbacks
    def test_a_flood_of_entities_never_asked_for(self):
        self.start()
        yield self.ready()
        server = self.server()
        (sid,) = server.entity_subscriptions
        state = {"s": "1", "a": {"unit_of_measurement": "W"}, "c": "01", "lc": 1.0}
        for n in range(10):
            server.send({"id": sid, "type": "event", "event": {
                "a": {f"sensor.flood_{n}_{i}": state for i in range(1000)}}})
            server.send({"id": sid, "type": "event", "event": {
                "c": {f"sensor.flood_{n}_{i}": {"+": {"s": "2"}} for i in range(1000)}}})
        yield self.roundtrip()
        # Bound: the cache holds the configured entities, however many the server sends.
        self.assertEqual(sorted(self.service.session.cache), [LAMP, HEATER])
        self.assertEqual(self.lines(level=LogLevel.warn), [])

    @defer.inlineCallbacks
    def test_removals_of_entities_never_subscribed(self):
        self.start()
        yield self.ready()
        server = self.server()
        (sid,) = server.entity_subscriptions
        server.send({"id": sid, "type": "event",
                     "event": {"r": [f"sensor.never_{i}" for i in range(20_000)]}})
        yield self.roundtrip()
        # Bound: no line at all for 20,000 removals of entities no plug uses.
        self.assertEqual(self.lines(level=LogLevel.warn), [])
        self.assertEqual(len(self.service.session.cache), 2)
        self.assertShortLines()


class SlowMessageTests(MisbehavingCase):
    """Item 5: liveness is a whole message or a pong; a message must end within 60 s."""

    @defer.inlineCallbacks
    def test_a_frame_that_trickles_in_is_dropped_by_its_deadline(self):
        self.start(ping_interval=300, ping_timeout=10)
        yield self.ready()
        server = self.server()
        server.write_raw(frame_header(1_000_000) + b'{"type": "event", "event": {"a": "')
        yield pause()
        # One byte every 5 s (of the clock): under the old rule each byte gave 10 s more.
        for _ in range(11):
            self.clock.advance(5)
            server.write_raw(b"x")
            yield pause()
        self.assertIn(server, self.home.connections, self.lines())
        self.clock.advance(5)                  # 60 s after the first bytes
        yield self.ended(server)
        self.assertFalse(self.service.connected)
        (line,) = self.lines(level=LogLevel.warn)
        self.assertIn("began a message that did not end within 60 s: reconnecting", line)
        self.assertIn("did not end within 60 s", self.service.last_error)
        self.assertShortLines()


class MessageSizeTests(MisbehavingCase):
    """Item 7: a bounded default (16 MiB) that holds the first event of 100,000 entities."""

    @defer.inlineCallbacks
    def test_over_the_default_size(self):
        self.start()
        yield self.ready()
        server = self.server()
        server.write_raw(frame_header(16 * 1024 * 1024 + 1) + b'{"type": ')
        yield self.ended(server)
        # Bound: nothing of it is read; one line, which names the limit.
        self.assertEqual(self.lines(level=LogLevel.warn), [
            f"Home Assistant at {self.home.url} sent a message of 16,777,217 bytes, over "
            f"max_message_size (16,777,216 bytes): reconnecting (raise max_message_size if "
            f"this Home Assistant is that large)"])
        self.assertFalse(self.service.connected)
        self.assertShortLines()

    @defer.inlineCallbacks
    def test_the_first_event_of_100000_entities(self):
        context = {"id": "01M8B4AGRXJS57RJ1X10MT3E6R", "parent_id": None, "user_id": None}
        for n in range(100_000):
            eid = f"sensor.e{n:06d}"
            self.home.states[eid] = State(eid, "1", {"unit_of_measurement": "W"},
                                          1795669967.645749, 1795669967.645749, context)
        self.home.filter_entities = False    # all of them in the first event
        sizes = []
        self.home.after_command = lambda proto, command: sizes.append(len(
            json.dumps({"id": 1, "type": "event", "event": {"a": {
                eid: s.as_compressed() for eid, s in self.home.states.items()}}},
                separators=(",", ":")))) if not sizes else None
        self.start()
        yield self.ready()
        self.assertGreater(sizes[0], 7_500_000)
        self.assertLess(sizes[0], 16 * 1024 * 1024)
        self.assertEqual(sorted(self.service.session.cache), [LAMP, HEATER])
        self.assertEqual(self.plugs["Heater"].watts, 100.0)
        self.assertEqual(self.lines(level=LogLevel.warn), [])


class BadMessageTests(MisbehavingCase):
    """Items 10, 11 and 12: refused or ignored with short lines, said once and counted."""

    @defer.inlineCallbacks
    def test_json_nested_100000_deep(self):
        self.start()
        yield self.ready()
        server = self.server()
        for _ in range(20):
            server.send_text("[" * 100_000 + "]" * 100_000)
        yield self.roundtrip()
        (line,) = self.lines("nested deeper")
        self.assertIn("sent a message nested deeper than 64 levels (200,000 characters); "
                      "ignored", line)
        self.clock.advance(60)
        (summary,) = self.lines("more like it")
        self.assertIn("(and 19 more like it in the last minute)", summary)
        self.assertTrue(self.service.connected)
        self.assertShortLines()

    @defer.inlineCallbacks
    def test_20000_badly_shaped_messages(self):
        self.start()
        yield self.ready()
        server = self.server()
        (sid,) = server.entity_subscriptions
        for n in range(5000):
            server.send_text("this is not json")
            server.send({"id": sid, "type": "event", "event": {"c": [HEATER, n]}})
            server.send({"id": 1000 + n, "type": "result", "success": False, "error": "broken"})
            server.send({"id": 100_000 + n, "type": "result", "success": False,
                         "error": ["a", "list"]})
        yield self.roundtrip()
        # Bound: one line per kind at once (not JSON, misshapen event, refused command) ...
        said = self.lines(level=LogLevel.warn)
        self.assertEqual(len(said), 3, said)
        self.clock.advance(60)
        # ... and one summary per kind when its minute ends: 6 lines for 20,000 messages.
        summaries = self.lines("more like it", level=LogLevel.warn)
        self.assertEqual(sorted(s.split("(and ")[1] for s in summaries), [
            "4,999 more like it in the last minute)", "4,999 more like it in the last minute)",
            "9,999 more like it in the last minute)"])
        self.assertEqual(len(self.lines(level=LogLevel.warn)), 6)
        self.assertTrue(self.service.connected)
        self.assertShortLines()

    @defer.inlineCallbacks
    def test_bad_utf8(self):
        self.start()
        yield self.ready()
        server = self.server()
        server.write_raw(frame_header(4) + b'"\xff\xfe"')
        yield self.ended(server)
        (line,) = self.lines(level=LogLevel.warn)
        self.assertIn("broke the websocket protocol (encountered invalid UTF-8", line)
        self.assertFalse(self.service.connected)
        self.assertShortLines()

    @defer.inlineCallbacks
    def test_long_text_from_the_server_is_clipped(self):
        self.home.version = "2024.1.6\n2026-01-01 [-] a fake log line " + "v" * 100_000
        self.home.invalid_message = "Invalid\n2026-01-01 [-] fake " + "i" * 100_000
        self.home.token = "another"
        self.start()
        yield until(lambda: self.home.closed, "the rejection")
        yield self.ended(self.home.closed[0])
        self.home.token = TOKEN
        self.clock.advance(61)
        yield self.ready()
        self.server().send({"id": 77, "type": "result", "success": False, "error": {
            "code": "c\nfake", "message": "m" * 100_017}})
        yield self.roundtrip()
        for part in ("rejected the access token", "Connected to Home Assistant",
                     "refused command (id 77)"):
            (line,) = self.lines(part)
            self.assertIn("characters)", line)           # the full size is given
        self.assertIn("(100017 characters)", self.lines("refused command")[0])
        self.assertIn("\\n", self.lines("Connected to Home Assistant")[0])   # escaped
        self.assertShortLines()


class ShortLivedSessionTests(MisbehavingCase):
    """Item 14: ready and dead at once counts as a failed attempt; the back-off grows."""

    @defer.inlineCallbacks
    def test_a_server_that_closes_right_after_the_subscription(self):
        def close_after_subscribing(proto, command):
            if command.get("type") == "subscribe_entities":
                proto.transport.loseConnection()
        self.home.after_command = close_after_subscribing
        self.start()
        delays = []
        for n in range(1, 7):
            yield until(lambda: self.service.sessions == n and self.service.connection.driver.gone
                        and self.clock.getDelayedCalls(), f"connection {n} to end")
            (retry,) = self.clock.getDelayedCalls()
            delays.append(retry.getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
        # Bound: 6 sessions in 31 s of the clock, not 28 in 22 s; each wait longer than the last.
        self.assertEqual(delays, [2.5, 4.5, 8.5, 16.5, 32.5, 60.5])
        self.assertEqual(self.service.sessions, 6)


class PingFloodTests(MisbehavingCase):
    """Item 3: a server that pings without end and never reads what we answer."""

    def queued(self):
        """Bytes our process holds for the server: the client transport's write buffer."""
        transport = self.service.connection.transport
        return len(transport.dataBuffer) + transport._tempDataLen

    @defer.inlineCallbacks
    def test_pongs_are_not_queued_without_bound(self):
        self.start()
        yield self.ready()
        server = self.server()
        server.transport.pauseProducing()              # the server reads nothing more
        server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = [0]

        def flood():
            if server not in self.home.connections:
                return
            if len(server.transport.dataBuffer) + server.transport._tempDataLen < 256 * 1024:
                for _ in range(500):
                    server.sendPing(b"p" * 125)       # Autobahn answers each with a pong
                sent[0] += 500
            if not self.stopped:
                reactor.callLater(0.001, flood)
        self.stopped = False
        self.addCleanup(setattr, self, "stopped", True)
        flood()
        peak = [0]

        def filled():
            peak[0] = max(peak[0], self.queued())
            return peak[0] > 8 * 1024 * 1024 or self.service.connection.driver.blocked
        yield until(filled, "our reading to stop", timeout=20)
        for _ in range(20):                            # and it stays stopped
            yield pause(0.01)
            peak[0] = max(peak[0], self.queued())
        # Bound: what we hold for the server stays under 256 KiB however long it pings.
        self.assertLess(peak[0], 256 * 1024)
        self.assertGreater(sent[0], 1000)
        driver = self.service.connection.driver
        yield until(lambda: driver.blocked, "our reading to be stopped")
        self.clock.advance(30)                         # the driver's stall timeout
        yield self.ended(server)
        self.assertFalse(self.service.connected)
        self.assertEqual(self.lines(level=LogLevel.warn), [
            f"Home Assistant at {self.home.url} left what we sent unread for 30 s: dropped, "
            f"reconnecting"])
        self.assertShortLines()


class Silent(protocol.Protocol):
    """Accepts a connection and never answers (an endpoint that is not Home Assistant)."""

    def connectionMade(self):
        self.factory.connections.append(self)
        self.received = b""

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.factory.connections.remove(self)
        self.factory.ended += 1


class UpgradeNotAnsweredTests(MisbehavingCase):
    """Item 17: say that the websocket upgrade was not answered, and why we dropped it."""

    @defer.inlineCallbacks
    def test_an_endpoint_that_never_answers_the_upgrade(self):
        factory = protocol.Factory.forProtocol(Silent)
        factory.connections, factory.ended = [], 0
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(lambda: [c.transport.abortConnection() for c in factory.connections])
        self.start(url=f"ws://127.0.0.1:{port.getHost().port}")
        yield until(lambda: factory.connections and b"\r\n\r\n" in factory.connections[0].received,
                    "the upgrade request")
        self.clock.advance(9)
        self.assertEqual(factory.ended, 0)
        self.clock.advance(1)
        yield until(lambda: factory.ended == 1, "the client to drop the connection")
        url = f"ws://127.0.0.1:{port.getHost().port}/api/websocket"
        self.assertEqual(self.lines(level=LogLevel.warn), [
            f"Home Assistant at {url} did not answer the websocket upgrade within 10 s: "
            f"reconnecting"])
        self.assertEqual(self.lines("auth_required"), [])
        self.assertShortLines()


class SenseKeepsAnsweringTests(unittest.TestCase):
    """While Home Assistant floods the daemon, Sense's requests are answered."""

    @defer.inlineCallbacks
    def test_a_flood_while_sense_asks(self):
        home = FakeHomeAssistant(TOKEN)
        home.listen()
        self.addCleanup(home.stop)
        home.set_state(HEATER, "321")
        daemon = start_service(self, f"""\
sources:
- hass:
    url: {home.url}
    auth_token: {TOKEN}
    plugs:
    - heater: {{entity_id: {HEATER}, mac: "53:75:31:00:0E:01"}}
""")
        yield until(lambda: daemon.plugs["heater"].watts == 321.0, "the first value")
        server = home.connections[-1]
        (sid,) = server.entity_subscriptions
        flooding = [True]
        bursts = [0]

        def flood():
            if not flooding[0] or server not in home.connections:
                return
            server.send({"id": sid, "type": "event", "event": {
                "a": {f"sensor.flood_{bursts[0]}_{i}": {"s": "1", "a": {}, "c": "01", "lc": 1.0}
                      for i in range(500)}}})
            for _ in range(50):
                server.send_text("this is not json")
                server.send({"id": sid, "type": "event", "event": {"c": ["bad"]}})
            bursts[0] += 1
            reactor.callLater(0, flood)
        flood()
        self.addCleanup(lambda: flooding.__setitem__(0, False))
        client = udp_client(self)
        for n in range(1, 11):
            sense(client, daemon.udp_port)
            replies = yield client.wait_for(n)
            self.assertEqual(replies[-1][0]["emeter"]["get_realtime"]["power"], 321.0)
            yield pause(0.02)
        flooding[0] = False
        self.assertGreater(bursts[0], 10)      # the flood ran while Sense asked
        self.assertIn(server, home.connections)
