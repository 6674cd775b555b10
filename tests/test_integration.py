"""Sources fail without harm: the whole daemon while its sources break and come back.

One in-process daemon (real reactor, 127.0.0.1, port 0) with a static plug,
an MQTT plug (a real mosquitto), a Home Assistant plug (the fake Autobahn
server) and an HTTP plug (a twisted.web server). A client keeps asking like
Sense, one request after the other, while the test kills and restarts the
broker, drops the websocket without a close frame and restarts Home
Assistant, and makes the HTTP endpoint answer 500 and then hang past the
poll time-out. Every request must get one reply per plug, the plugs keep
their last good values while their source is down, and every source comes
back by itself.

Back-off tuning: the HTTP source's C{interval} and C{timeout} are config
keys. The MQTT and Home Assistant sources have no config key for their
reconnection back-off (1 s and up, exponential), so the test shortens it on
the running service objects: C{MqttService._backoff} (the policy its
C{retry_delay} applies) and C{HassService.initial_delay}/C{max_delay}. The
reconnection logic itself (C{ClientService}, the services' C{retry_delay})
is the daemon's own.
"""

from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.hass_server import FakeHomeAssistant
from tests.httpserver import serve
from tests.mosquitto import started_broker
from tests.support import sense, start_service, udp_client
from tests.httpserver import Meter
from tests.support import wait_until

TOKEN = "integration-ha-token"
WAIT = 10.0           # seconds: bound for every single wait
PERIOD = 0.05         # seconds between Sense requests
MAX_REQUESTS = 2000   # the client stops by itself after this many requests
FAST_RETRY = 0.2      # seconds: the back-off the test gives the MQTT and HA sources

ALIASES = {"Static": "static", "Mqtt": "mqtt", "Hass": "hass", "Http": "http"}


def config(broker_port, hass_url, http_url):
    return f"""\
sources:
- static:
    plugs:
    - static:
        alias: Static
        mac: 53:75:31:00:00:01
        max_watts: 50
- mqtt:
    host: 127.0.0.1
    port: {broker_port}
    plugs:
    - mqtt:
        alias: Mqtt
        mac: 53:75:31:00:00:02
        power_topic: home/mqtt/power
- hass:
    url: {hass_url}
    auth_token: {TOKEN}
    plugs:
    - hass:
        alias: Hass
        mac: 53:75:31:00:00:03
        entity_id: sensor.hass_power
- http:
    url: {http_url}
    interval: 1
    timeout: 1.5
    plugs:
    - http:
        alias: Http
        mac: 53:75:31:00:00:04
        power_keypath: power
"""


class SenseClient:
    """Asks like Sense, one request at a time: the next goes out once all replies came.

    A request whose replies do not all arrive within C{WAIT} seconds fails
    the run. C{answers} holds, per request, C{{plug id: watts}} as Sense saw it.
    """

    def __init__(self, testcase, port, expected):
        self.client = udp_client(testcase)
        self.port = port
        self.expected = expected
        self.answers = []
        self.slowest = 0.0
        self.problem = None
        self.running = True
        self.done = self._run()
        testcase.addCleanup(self._end)   # runs before the socket closes (cleanups are LIFO)

    def _end(self):
        self.running = False
        return self.done

    @defer.inlineCallbacks
    def _run(self):
        try:
            while self.running and len(self.answers) < MAX_REQUESTS:
                seen = len(self.client.replies)
                started = reactor.seconds()
                sense(self.client, self.port)
                replies = yield self.client.wait_for(seen + self.expected)
                self.slowest = max(self.slowest, reactor.seconds() - started)
                yield task.deferLater(reactor, PERIOD, lambda: None)
                if len(self.client.replies) != seen + self.expected:
                    raise AssertionError(f"request {len(self.answers) + 1}: "
                                         f"{len(self.client.replies) - seen} replies, "
                                         f"expected {self.expected}")
                answer = {}
                for reply, _ in replies[seen:]:
                    alias = reply["system"]["get_sysinfo"]["alias"]
                    answer[ALIASES[alias]] = reply["emeter"]["get_realtime"]["power"]
                if len(answer) != self.expected:
                    raise AssertionError(f"request {len(self.answers) + 1}: replies {answer}")
                self.answers.append(answer)
        except BaseException as e:   # noqa: B902 - reported by stop(), the loop ends here
            self.problem = e
            if isinstance(e, defer.CancelledError):
                self.problem = AssertionError(f"request {len(self.answers) + 1}: not all "
                                              f"{self.expected} replies within {WAIT} s")

    def check(self):
        if self.problem is not None:
            raise self.problem

    def requests_after(self, count, n):
        """A Deferred firing once C{n} more requests than C{count} were answered."""
        return wait_until(lambda: len(self.answers) >= count + n or self.problem is not None,
                          f"{n} more answered Sense requests")

    @defer.inlineCallbacks
    def stop(self):
        self.running = False
        yield self.done
        self.check()


class SourcesFailWithoutHarm(unittest.TestCase):

    @defer.inlineCallbacks
    def setUp(self):
        self.broker = yield started_broker(self)
        yield self.broker.publish("home/mqtt/power", "100", retain=True)
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        self.addCleanup(self._stop_home)
        self.home.set_state("sensor.hass_power", "200", {"unit_of_measurement": "W"})
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 300}')
        http_port = serve(self, self.meter)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.daemon = start_service(self, config(self.broker.port, self.home.url,
                                                 f"http://127.0.0.1:{http_port}/meter"))
        sources = {s.kind: s for s in self.daemon.sources}
        self.mqtt, self.hass, self.http = sources["mqtt"], sources["hass"], sources["http"]
        # No config key for these back-offs (see the module docstring).
        self.mqtt._backoff = lambda attempt: FAST_RETRY
        self.hass.initial_delay = FAST_RETRY
        self.hass.max_delay = FAST_RETRY

    def _stop_home(self):
        if self.home.port is not None:
            return self.home.stop()

    def watts(self, plug_id):
        return self.daemon.plugs[plug_id].watts

    def settle(self, plug_id, watts):
        return wait_until(lambda: self.watts(plug_id) == watts,
                          f"plug {plug_id} at {watts} W (now {self.watts(plug_id)} W)")

    @defer.inlineCallbacks
    def seen_by_sense(self, client, plug_id, watts):
        """Wait until a Sense reply carries C{watts} for C{plug_id}."""
        yield wait_until(lambda: client.problem is not None or (
            client.answers and client.answers[-1][plug_id] == watts),
            f"Sense to see {plug_id} at {watts} W")
        client.check()

    @defer.inlineCallbacks
    def outage(self, client, what, good):
        """While a source is down: Sense keeps getting all replies with the last good values."""
        before = len(client.answers)
        yield client.requests_after(before, 5)
        client.check()
        for answer in client.answers[before:]:
            self.assertEqual(answer, good, what)
        self.assertEqual({p: self.watts(p) for p in good}, good, what)

    def lines(self, text):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace", "").startswith("senselink") and text in formatEvent(e)]

    @defer.inlineCallbacks
    def test_sources_fail_and_come_back(self):
        started = reactor.seconds()
        good = {"static": 50.0, "mqtt": 100.0, "hass": 200.0, "http": 300.0}
        for plug_id, watts in good.items():
            yield self.settle(plug_id, watts)
        client = SenseClient(self, self.daemon.udp_port, expected=4)
        yield self.seen_by_sense(client, "http", 300.0)
        self.assertEqual(client.answers[-1], good)

        # -- the MQTT broker dies and comes back on the same port
        self.broker.kill()
        yield wait_until(lambda: not self.mqtt.connected, "the MQTT source to see the loss")
        yield self.outage(client, "broker down", good)
        yield self.broker.start()
        yield self.mqtt.when_ready().addTimeout(WAIT, reactor)
        yield self.broker.publish("home/mqtt/power", "110")
        good["mqtt"] = 110.0
        yield self.seen_by_sense(client, "mqtt", 110.0)
        self.assertTrue(self.lines("Lost the connection to MQTT broker"))

        # -- the websocket is dropped without a close frame; the same server is still there
        sessions = self.hass.sessions
        self.home.drop_connections()
        yield wait_until(lambda: not self.hass.connected or self.hass.sessions > sessions,
                         "the Home Assistant source to see the drop")
        yield self.outage(client, "websocket dropped", good)
        yield wait_until(lambda: self.hass.sessions > sessions and self.hass.connected
                         and self.hass.protocol is not None and self.hass.protocol.ready,
                         "the Home Assistant session to come back")
        self.home.set_state("sensor.hass_power", "205", {"unit_of_measurement": "W"})
        good["hass"] = 205.0
        yield self.seen_by_sense(client, "hass", 205.0)

        # -- Home Assistant stops (no close frame) and a new one starts on the same port
        sessions = self.hass.sessions
        port = self.home.port.getHost().port
        yield self.home.stop()
        yield wait_until(lambda: not self.hass.connected, "the Home Assistant source to see it")
        yield self.outage(client, "Home Assistant down", good)
        self.home = FakeHomeAssistant(TOKEN)
        self.home.set_state("sensor.hass_power", "210", {"unit_of_measurement": "W"})
        self.home.listen(port)
        good["hass"] = 210.0
        yield self.seen_by_sense(client, "hass", 210.0)
        self.assertGreater(self.hass.sessions, sessions)
        self.assertTrue(self.lines("Disconnected from Home Assistant"))

        # -- the HTTP endpoint answers 500, then hangs past the poll time-out
        failures = self.http.failures
        self.meter.reply = (500, b"internal error")
        yield wait_until(lambda: self.http.failures >= failures + 2, "failed polls (500)")
        yield self.outage(client, "HTTP 500", good)
        self.assertTrue(self.lines("HTTP 500"))
        self.meter.hold = True
        failures, skipped = self.http.failures, self.http.skipped
        yield wait_until(lambda: self.http.failures >= failures + 2, "timed-out polls")
        self.assertGreater(self.http.skipped, skipped)   # ticks found the poll still hanging
        self.assertTrue(self.lines("no complete reply within 1.5 s"))
        yield self.outage(client, "HTTP hangs", good)
        self.assertTrue(self.meter.held)
        self.meter.hold = False
        self.meter.reply = (200, b'{"power": 310}')
        self.meter.release()
        good["http"] = 310.0
        yield self.seen_by_sense(client, "http", 310.0)
        self.assertTrue(self.lines("Polling http://127.0.0.1"))

        # -- everything is back: one more round of new values from every source
        yield self.broker.publish("home/mqtt/power", "120")
        self.home.set_state("sensor.hass_power", "220", {"unit_of_measurement": "W"})
        self.meter.reply = (200, b'{"power": 320}')
        good.update(mqtt=120.0, hass=220.0, http=320.0)
        for plug_id in ("mqtt", "hass", "http"):
            yield self.seen_by_sense(client, plug_id, good[plug_id])
        yield client.stop()
        self.assertEqual(client.answers[-1], good)
        self.assertTrue(self.mqtt.connected and self.hass.connected and self.http.connected)

        # Every request got its four replies (SenseClient fails otherwise), and Sense only
        # ever saw values the sources had sent: never a zero or a gap while one was down.
        seen = {p: sorted({a[p] for a in client.answers}) for p in good}
        self.assertEqual(seen["static"], [50.0])
        self.assertTrue(set(seen["mqtt"]) <= {100.0, 110.0, 120.0}, seen)
        self.assertTrue(set(seen["hass"]) <= {200.0, 205.0, 210.0, 220.0}, seen)
        self.assertTrue(set(seen["http"]) <= {300.0, 310.0, 320.0}, seen)
        self.assertGreaterEqual(len(client.answers), 30)
        self.assertLess(client.slowest, WAIT)
        self.assertEqual(self.daemon.responder.counters.replies.get("sense"),
                         4 * len(client.answers))
        self.assertLess(reactor.seconds() - started, 60)
