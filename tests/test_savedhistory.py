"""The web page's power history survives a restart: a section of the state file, each
plug's entry checked on its own, points beyond the windows dropped at load."""

import json
import math
import urllib.request
from types import SimpleNamespace

from twisted.internet import task
from twisted.trial import unittest

from senselink.history import MINUTES, PowerHistory
from senselink.plughub import PlugHub
from senselink.plugs import AggregatePlug, Plug, PlugSet
from senselink.savedhistory import SavedHistory, ceiling, check_entry
from tests.restart_support import TOKEN, MutableRestartCase
from tests.support import LOOPBACK

START = 1_800_000_000.0      # 2027-01-15, a time the state file may name


def plug(plug_id, clock, n, cls=Plug):
    return cls(plug_id, mac=f"53:75:31:00:0F:{n:02X}", device_id=f"{n:040X}", kind="mutable",
               clock=clock)


def daemon(clock, max_plug_watts=10_000.0):
    """A daemon as L{SavedHistory} sees it: plugs a, b and the aggregate ab of both."""
    a, b, ab = plug("a", clock, 1), plug("b", clock, 2), plug("ab", clock, 3, AggregatePlug)
    ab.add(a)
    ab.add(b)
    plugs = PlugSet([a, b, ab])
    history = PowerHistory(clock)
    history.follow(PlugHub(plugs))
    return SimpleNamespace(plugs=plugs, history=history, reactor=clock,
                           config=SimpleNamespace(settings=SimpleNamespace(
                               max_plug_watts=max_plug_watts)))


def saved_history(ns):
    """The state file's history section of a daemon made by L{daemon}."""
    return SavedHistory(PlugHub(ns.plugs), ns.reactor, lambda: ns.history,
                        lambda: ns.config.settings.max_plug_watts)


class SaveAndLoadTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)

    def test_points_and_minutes_come_back(self):
        before = daemon(self.clock)
        for watts in (100, 250, 75):
            before.plugs["a"].set_power(watts)
            self.clock.advance(130)
        saved = json.loads(json.dumps(saved_history(before).snapshot()))
        self.assertEqual(set(saved), {"a", "b", "ab"})
        self.clock.advance(30)                    # the restart
        after = daemon(self.clock)
        self.assertEqual(saved_history(after).restore(saved), [])
        now = self.clock.seconds()
        recent = after.history["a"].recent(now)
        self.assertEqual(recent, [(START, 100.0), (START + 130, 250.0), (START + 260, 75.0),
                                  (now, 0.0)])   # a new plug holds 0 W
        means = {t: mean for t, _low, mean, _high in after.history["a"].minutes(now)}
        self.assertEqual(means[START], 100.0)    # START is a minute's start
        self.assertAlmostEqual(means[START + 120], (10 * 100 + 50 * 250) / 60, 2)
        self.assertEqual(after.history["ab"].recent(now)[2], (START + 260, 75.0))

    def test_old_points_are_dropped(self):
        before = daemon(self.clock)
        before.plugs["a"].set_power(500)
        saved = saved_history(before).snapshot()
        self.clock.advance(86400 + 120)
        after = daemon(self.clock)
        self.assertEqual(saved_history(after).restore(saved), [])
        now = self.clock.seconds()
        self.assertEqual(after.history["a"].recent(now), [(now, 0.0)])
        self.assertEqual(len(after.history["a"].minutes(now)), 1)   # the minute in progress

    def test_a_bad_entry_costs_only_its_plug(self):
        before = daemon(self.clock, max_plug_watts=1000)
        before.plugs["a"].set_power(900)
        before.plugs["b"].set_power(800)
        saved = json.loads(json.dumps(saved_history(before).snapshot()))
        self.assertEqual(saved["ab"]["recent"][-1][1], 1700)  # the aggregate: up to 2000 W
        saved["b"]["recent"][0][1] = 5000.0
        saved["gone"] = "a plug no longer configured is not read"
        self.clock.advance(5)
        after = daemon(self.clock, max_plug_watts=1000)
        problems = saved_history(after).restore(saved)
        self.assertEqual(problems, [
            "The power history of plug 'b' in the state file is unusable (a value of recent is "
            "not a number of watts from 0 to 1000); it starts empty"])
        now = self.clock.seconds()
        self.assertEqual(after.history["a"].recent(now)[-2][1], 900.0)
        self.assertEqual(after.history["b"].recent(now), [(now, 0.0)])
        self.assertEqual(after.history["ab"].recent(now)[-2][1], 1700.0)

    def test_a_section_not_a_mapping_is_one_line(self):
        after = daemon(self.clock)
        self.assertEqual(len(saved_history(after).restore([1, 2])), 1)
        self.assertEqual(saved_history(after).restore(None), [])

    def test_without_the_web_interface_nothing_is_kept(self):
        off = daemon(self.clock)
        off.history = None
        self.assertEqual(saved_history(off).snapshot(), {})
        self.assertEqual(saved_history(off).restore({"a": "anything"}), [])


class CheckTests(unittest.TestCase):
    def test_entries(self):
        good = {"recent": [[START, 1.5], [START + 2, 3]],
                "minutes": [[START - START % 60, 1], [START - START % 60 + 60, 1, 2, 3]]}
        self.assertEqual(check_entry(good, 10), "")
        cases = {
            "not a mapping": [],
            "recent is not a list of at most 600 points": {"recent": [[START, 1]] * 601},
            "a point of recent is not a list of 2 numbers": {"recent": [[START, 1, 2]]},
            "a time of recent is not a time in the years 2000 to 2100": {"recent": [[1e12, 1]]},
            "the times of recent are not in order": {"recent": [[START + 1, 1], [START, 1]]},
            "a value of recent is not a number of watts from 0 to 10":
                {"recent": [[START, math.inf]]},
            f"minutes is not a list of at most {MINUTES} points":
                {"recent": [], "minutes": None},
            "a time of minutes is not a minute in the years 2000 to 2100":
                {"recent": [], "minutes": [[START + 1, 1]]},
            "a minute's min, mean and max are not in order":
                {"recent": [], "minutes": [[START - START % 60, 3, 2, 1]]},
            "a value of minutes is not a number of watts from 0 to 10":
                {"recent": [], "minutes": [[START - START % 60, True]]},
        }
        for words, entry in cases.items():
            self.assertEqual(check_entry(entry, 10), words)

    def test_ceiling(self):
        clock = task.Clock()
        self.assertEqual(ceiling(daemon(clock).plugs["ab"], 7200), 14400)
        self.assertEqual(ceiling(daemon(clock).plugs["a"], 7200), 7200)


class RestartTests(MutableRestartCase):

    def api(self, path, body=None):
        request = urllib.request.Request(
            f"http://{LOOPBACK}:{self.web}/api/{path}", method="GET" if body is None else "PUT",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def test_the_history_survives_a_restart(self):
        daemon = self.start()
        self.api("plugs/ev", {"power": 900})
        self.api("plugs/heater", {"power": 500})
        before = self.api("plugs/heater/history")["recent"]
        self.assertEqual(before[-1][1], 500)
        self.assertIn(1400, [w for _t, w in self.api("house")["recent"]])
        output = self.stop(daemon)
        self.assertNotIn("unusable", output)

        daemon = self.start()
        after = self.api("plugs/heater/history")
        # heater starts from its power (restore: false); the 500 W of before is still there
        self.assertEqual(after["recent"][-1][1], 10)
        self.assertIn(before[-1], after["recent"])
        self.assertLess(before[-1][0], after["recent"][-1][0])
        house = self.api("house")
        self.assertIn(1400, [w for _t, w in house["recent"]])
        self.assertEqual(house["watts"], 910)
        output = self.stop(daemon)
        self.assertNotIn("unusable", output)
