"""Shared helpers of the mqtt source tests: configs, log capture, a broker test case."""

import textwrap

from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from senselink import config as config_module
from senselink.plugbuilder import build_plugs
from senselink.plugs import Plug
from senselink.sources.mqtt import MqttService
from tests.mosquitto import require_mosquitto, started_broker
from tests.support import wait_until

WAIT = 10.0   # seconds: bound for every wait on the broker
MARKER = "test/marker"   # topic of a plug every broker test has, see BrokerTestCase.flush


def config_text(port, plugs, source=""):
    plugs = textwrap.indent(textwrap.dedent(plugs).strip("\n"), " " * 8)
    source = textwrap.indent(textwrap.dedent(source).strip("\n"), " " * 6)
    return (f"sources:\n- mqtt:\n      host: 127.0.0.1\n      port: {port}\n"
            + (source + "\n" if source.strip() else "")
            + f"      plugs:\n{plugs}\n")


def load(text):
    return config_module.load_text(text, "test.yml")


def capture_log(testcase):
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def ours(events, level=None):
    """Formatted text of our mqtt source's events (optionally of one level)."""
    return [formatEvent(e) for e in events
            if str(e.get("log_namespace", "")).startswith("senselink.sources.mqtt")
            and (level is None or e.get("log_level") == level)]


class CountingPlugs:
    """Counts Plug.set_power calls per plug id (the number of updates a plug got)."""

    def __init__(self, testcase):
        self.counts = {}
        original = Plug.set_power

        def counting(plug, watts, on=None):
            self.counts[plug.id] = self.counts.get(plug.id, 0) + 1
            return original(plug, watts, on)
        testcase.patch(Plug, "set_power", counting)

    def __getitem__(self, plug_id):
        return self.counts.get(plug_id, 0)


class BrokerTestCase(TestCase):
    timeout = 120

    def setUp(self):
        require_mosquitto()

    @defer.inlineCallbacks
    def start(self, plugs, source="", broker=None, clock=None, ready=True, **broker_args):
        """Start a broker (unless given) and an mqtt source service for C{plugs}."""
        if broker is None:
            broker = yield started_broker(self, **broker_args)
        self.broker = broker
        plugs = textwrap.dedent(plugs).strip("\n") + f"\n- marker:\n    power_topic: {MARKER}\n"
        config = load(config_text(broker.port, plugs, source))
        self.clock = clock if clock is not None else reactor
        self.plugs = build_plugs(config, self.clock)
        service = MqttService(config.sources[0], self.plugs, self.clock, reactor=reactor)
        self.service = service
        service.startService()
        self.addCleanup(service.stopService)
        if ready:
            yield service.when_ready().addTimeout(WAIT, reactor)
        return service

    def watts(self, plug_id):
        return self.plugs[plug_id].watts

    @defer.inlineCallbacks
    def publish_and_wait(self, topic, payload, plug_id, watts, retain=False):
        yield self.broker.publish(topic, payload, retain=retain)
        yield wait_until(lambda: self.watts(plug_id) == watts,
                         f"plug {plug_id} at {watts} W after {payload!r} on {topic} "
                         f"(it has {self.watts(plug_id)} W)")

    @defer.inlineCallbacks
    def flush(self):
        """Wait until every message published before now has been handled.

        The broker forwards messages in the order it received them, so once a
        marker published last has arrived, everything before it has too.
        """
        self.marks = getattr(self, "marks", 0) + 1
        mark = float(self.marks)
        yield self.broker.publish(MARKER, str(mark))
        yield wait_until(lambda: self.plugs["marker"].watts == mark, f"marker {mark} on {MARKER}")


def scheduled_retries(clock):
    """The calls on C{clock} that are not a session's own timers (keepalive, answers awaited,
    the stall timeout: its driver's).

    With the source's connections ended, what is left is C{ClientService}'s next attempt.
    """
    from senselink.sessiondriver import SessionDriver
    return [call for call in clock.getDelayedCalls()
            if not isinstance(getattr(call.func, "__self__", None), SessionDriver)]
