"""The house total over time (C{/api/house})."""

from twisted.internet import defer
from twisted.trial import unittest

from senselink.history import PlugHistory
from senselink.web.house import total_minutes, total_recent
from tests.websupport import WebTestCase


class TotalTests(unittest.TestCase):

    def test_step_functions_add_up(self):
        a = PlugHistory(100.0, 1000.0)
        b = PlugHistory(10.0, 1000.0)
        a.record(300.0, 1100.0)
        b.record(20.0, 1200.0)
        a.record(0.0, 1300.0)
        self.assertEqual(total_recent([a, b], 1400.0),
                         [(1000.0, 110.0), (1100.0, 310.0), (1200.0, 320.0), (1300.0, 20.0)])

    def test_minutes_add_their_means(self):
        a = PlugHistory(100.0, 1200.0)        # minute 20 starts at 1200 s
        b = PlugHistory(50.0, 1200.0)
        a.record(200.0, 1230.0)               # mean of minute 20: 150 W
        minutes = total_minutes([a, b], 1320.0)
        self.assertEqual(minutes[0], (1200.0, 200.0))
        self.assertEqual(minutes[-1], (1320.0, 250.0))

    def test_no_histories(self):
        self.assertEqual(total_recent([], 10.0), [])
        self.assertEqual(total_minutes([], 10.0), [])


class HouseApiTests(WebTestCase):

    @defer.inlineCallbacks
    def test_house_total(self):
        code, plugs = yield self.json_call("GET", "/api/plugs")
        reported = sum(p["watts"] for p in plugs["plugs"] if p["reported"])
        code, house = yield self.json_call("GET", "/api/house")
        self.assertEqual(code, 200)
        self.assertEqual(house["watts"], reported)
        self.assertEqual(house["recent"][-1][1], reported)
        self.assertEqual(house["minutes"][0][0], house["since"])
        self.assertLessEqual(house["since"], house["now"])
        self.service.set_power("ev", 100.0)
        code, later = yield self.json_call("GET", f"/api/house?since={house['now']!r}")
        self.assertEqual(later["recent"], [])             # the stream extends it
        self.assertLessEqual(len(later["minutes"]), 2)
        self.assertEqual(later["watts"], reported - 1500.0 + 100.0)
        for bad in ("nan", "x"):
            code, body = yield self.json_call("GET", f"/api/house?since={bad}")
            self.assertEqual(code, 400)
            self.assertIn("since", body["error"])
