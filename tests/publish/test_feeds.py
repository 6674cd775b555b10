"""One plug's state messages on a task.Clock: rate limits, heartbeat, kWh never backwards."""

from twisted.internet import task
from twisted.trial.unittest import TestCase

from senselink.config.publish import PublishSettings
from senselink.plughub import PlugHub
from senselink.plugs import Plug, PlugSet
from senselink.publish.discovery import PlugTopics
from senselink.publish.feeds import PlugFeed
from senselink.publish.outbox import Message, Outbox


class Recorder:
    """What a feed needs of its publisher: settings, a clock, and put (recorded)."""

    def __init__(self, clock, **settings):
        self.clock = clock
        self.settings = PublishSettings(host="h", **settings)
        self.sent = []

    def put(self, topic, payload, qos=0, retain=True):
        self.sent.append((self.clock.seconds(), topic.rsplit("/", 1)[-1], payload))


class Meter:
    def __init__(self):
        self.kwh = 0.0

    def kept_kwh(self, plug):
        return self.kwh


class FeedTests(TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.plug = Plug("heater", mac="53:75:31:F6:4C:05", device_id="A" * 40, kind="mutable",
                         clock=self.clock)
        self.publisher = Recorder(self.clock, min_interval=1.0, max_interval=60.0)
        self.feed = PlugFeed(self.plug, PlugTopics(self.plug, self.publisher.settings),
                             self.publisher)
        # The publisher follows the plugs through the hub and calls the feed.
        self.subscription = PlugHub(PlugSet([self.plug])).subscribe(changed=self.feed.changed)
        self.addCleanup(self.subscription.cancel)
        self.addCleanup(self.feed.stop)

    def powers(self):
        return [(at, payload) for at, kind, payload in self.publisher.sent if kind == "power"]

    def test_at_most_once_a_second_latest_value_wins(self):
        self.feed.power()
        self.plug.set_power(100.0)                 # within the second: waits
        self.clock.advance(0.5)
        self.plug.set_power(200.0)
        self.plug.set_power(300.0)
        self.assertEqual(self.powers(), [(0.0, b"0.0")])
        self.clock.advance(0.5)
        self.assertEqual(self.powers(), [(0.0, b"0.0"), (1.0, b"300.0")])
        self.clock.advance(5.0)
        self.plug.set_power(400.0)                 # long after: at once
        self.assertEqual(self.powers()[-1], (6.0, b"400.0"))

    def test_a_change_undone_within_the_interval_sends_nothing(self):
        self.feed.power()
        self.plug.set_power(100.0)
        self.plug.set_power(0.0)
        self.clock.advance(1.0)
        self.assertEqual(self.powers(), [(0.0, b"0.0")])

    def test_at_least_every_max_interval(self):
        self.feed.power()
        for _ in range(3):
            self.clock.advance(60.0)
        self.assertEqual([at for at, _ in self.powers()], [0.0, 60.0, 120.0, 180.0])
        self.plug.set_power(5.0)         # just after the heartbeat: a second later
        self.clock.advance(1.0)
        self.assertEqual(self.powers()[-1], (181.0, b"5.0"))
        self.clock.advance(59.0)         # and the next heartbeat 60 s after that
        self.assertEqual(self.powers()[-1], (181.0, b"5.0"))
        self.clock.advance(1.0)
        self.assertEqual(self.powers()[-1], (241.0, b"5.0"))

    def test_energy_never_goes_backwards(self):
        meter = Meter()
        meter.kwh = 2.5
        self.feed.energy_now(meter)
        meter.kwh = 1.0                 # e.g. counters restarted without their state file
        self.feed.energy_now(meter)
        meter.kwh = 2.75
        self.feed.energy_now(meter)
        self.assertEqual([p for _, kind, p in self.publisher.sent if kind == "energy"],
                         [b"2.5", b"2.5", b"2.75"])

    def test_stop_cancels_timers(self):
        self.feed.power()
        self.plug.set_power(1.0)
        self.feed.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class OutboxTests(TestCase):

    def test_latest_per_topic_and_bounded(self):
        box = Outbox(limit=2)
        self.assertTrue(box.put("a", b"1"))
        self.assertTrue(box.put("b", b"1", qos=1))
        self.assertTrue(box.put("a", b"2"))            # replaces, keeps its place
        self.assertFalse(box.put("c", b"1"))           # a third topic: refused
        self.assertEqual(box.take(), ("a", Message(b"2", 0, True)))
        box.put_back("b", Message(b"0", 1, True))      # a newer b waits: kept
        box.put_back("a", Message(b"0", 0, True))
        self.assertEqual(box.take(), ("b", Message(b"1", 1, True)))
        self.assertEqual(box.take(), ("a", Message(b"0", 0, True)))
        self.assertIsNone(box.take())
