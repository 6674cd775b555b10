"""Power history (senselink/history.py): fixed memory, change and minute resolution, reloads."""

import tracemalloc

from twisted.internet import task
from twisted.trial import unittest

from senselink import history
from senselink.history import MINUTES, RECENT_POINTS, RECENT_SECONDS, PlugHistory, PowerHistory
from senselink.plughub import PlugHub
from senselink.plugs import Plug, PlugSet

START = 1_700_000_000.0 - (1_700_000_000.0 % 60)    # on a minute boundary


def plug(plug_id, clock, watts=0.0):
    return Plug(plug_id, mac="53:75:31:00:00:01", device_id="AB" * 20, kind="mutable",
                clock=clock, watts=watts)


class PlugHistoryTests(unittest.TestCase):

    def test_minutes_are_time_weighted(self):
        h = PlugHistory(100.0, START)
        h.record(200.0, START + 15)          # 15 s at 100 W, then 45 s at 200 W
        h.record(50.0, START + 75)           # next minute: 15 s at 200 W, 45 s at 50 W
        minutes = h.minutes(START + 120)
        self.assertEqual(minutes[-3], (START, 100.0, 175.0, 200.0))
        self.assertEqual(minutes[-2], (START + 60, 50.0, 87.5, 200.0))
        self.assertEqual(minutes[-1], (START + 120, 50.0, 50.0, 50.0))   # just begun

    def test_quiet_minutes_are_filled_when_read(self):
        h = PlugHistory(42.0, START)
        minutes = h.minutes(START + 3600 + 30)
        self.assertEqual(len(minutes), 61)
        self.assertTrue(all(m[1:] == (42.0, 42.0, 42.0) for m in minutes))
        self.assertEqual([m[0] for m in minutes], [START + 60 * i for i in range(61)])

    def test_a_day_at_most_and_a_long_gap(self):
        h = PlugHistory(1.0, START)
        h.record(2.0, START + 10 * 86400)    # ten days later: filling is bounded
        minutes = h.minutes(START + 10 * 86400 + 600)
        self.assertEqual(len(minutes), MINUTES)
        self.assertEqual(minutes[-1][2], 2.0)
        self.assertEqual(minutes[0][0], START + 10 * 86400 + 600 - (MINUTES - 1) * 60)

    def test_recent_at_change_resolution(self):
        h = PlugHistory(0.0, START)
        for i in range(1, 20):
            h.record(float(i), START + 2 * i)
        points = h.recent(START + 40)
        self.assertEqual(points[0], (START, 0.0))
        self.assertEqual(points[-1], (START + 38, 19.0))
        self.assertEqual(len(points), 20)
        # Older than 10 minutes: only the value held at the window's start remains.
        later = h.recent(START + 38 + RECENT_SECONDS + 5)
        self.assertEqual(later, [(START + 43, 19.0)])

    def test_fast_changes_stay_within_the_ring(self):
        h = PlugHistory(0.0, START)
        for i in range(10 * RECENT_POINTS):  # 100 changes a second for a minute
            h.record(float(i % 7), START + i / 100)
        self.assertLessEqual(h.count, RECENT_POINTS)
        points = h.recent(START + 60)
        self.assertLessEqual(len(points), RECENT_POINTS + 1)
        self.assertEqual(points[-1][1], float((10 * RECENT_POINTS - 1) % 7))
        times = [t for t, _ in points]
        self.assertEqual(times, sorted(times))
        # The minutes still see every extreme.
        minute = h.minutes(START + 60)[-2]
        self.assertEqual((minute[1], minute[3]), (0.0, 6.0))

    def test_memory_is_fixed(self):
        h = PlugHistory(0.0, START)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(200_000):
                h.record(float(i % 1000), START + i * 0.7)
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertLess(grown, 1024)
        self.assertEqual(history.BYTES_PER_PLUG,
                         sum(a.itemsize * len(a) for a in (h.times, h.values, h.minute_ids,
                                                           h.mins, h.means, h.maxs)))

    def test_clock_going_backwards(self):
        h = PlugHistory(5.0, START + 100)
        h.record(7.0, START + 50)
        self.assertEqual(h.minutes(START + 130)[-1][3], 7.0)
        self.assertEqual(h.recent(START + 130)[-1][1], 7.0)


class PowerHistoryTests(unittest.TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)

    def test_observes_plugs_and_aggregates(self):
        a = plug("a", self.clock, 10)
        plugs = PlugSet([a])
        recorder = PowerHistory(self.clock)
        recorder.follow(PlugHub(plugs))
        self.clock.advance(5)
        a.set_power(20.0)
        self.assertEqual(recorder["a"].recent(self.clock.seconds()),
                         [(START, 10.0), (START + 5, 20.0)])

    def test_reload_keeps_plugs_that_stay(self):
        a, b = plug("a", self.clock, 1), plug("b", self.clock, 2)
        recorder = PowerHistory(self.clock)
        hub = PlugHub(PlugSet([a, b]))
        recorder.follow(hub)
        self.clock.advance(3)
        a.set_power(4.0)
        kept = recorder["a"]
        a2 = plug("a", self.clock, 4)        # rebuilt under its id, same value
        c = plug("c", self.clock, 9)
        hub.replace(PlugSet([a2, c]))
        self.assertIs(recorder["a"], kept)
        self.assertIsNone(recorder.get("b"))
        self.assertEqual(a.observers, [])    # the old plug is no longer watched
        self.clock.advance(3)
        a2.set_power(5.0)
        self.assertEqual([v for _, v in kept.recent(self.clock.seconds())], [1.0, 4.0, 5.0])
        recorder.stop()
        self.assertEqual((a2.observers, c.observers, recorder.plugs), ([], [], {}))
