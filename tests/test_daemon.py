"""The daemon's public API and its state-file settings, in process."""

import os

from twisted.internet import task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink.errors import StartupError
from senselink.service import makeService
from tests.support import config_from_text

PLUGS = """\
sources:
- mutable:
    plugs:
    - heater: {power: 100, max_watts: 1500, off_usage: 2, mac: "53:75:31:00:0D:01"}
    - kettle: {power: 50, mac: "53:75:31:00:0D:02"}
- static:
    plugs:
    - lamp: {max_watts: 5, mac: "53:75:31:00:0D:03"}
"""

ONE_PLUG = """\
sources:
- static:
    plugs:
    - lamp: {max_watts: 5, mac: "53:75:31:00:0D:03"}
"""


class StateFileSettingsTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1_800_000_000)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def start(self, text, plugs=PLUGS):
        daemon = makeService(config_from_text(text + plugs), port=0, interface="127.0.0.1",
                             reactor=self.clock)
        for name in ("udp", "tcp"):             # the clock is no reactor: no listeners here
            daemon.kasa.getServiceNamed(name).disownServiceParent()
        daemon.startService()
        self.addCleanup(daemon.stopService)
        return daemon

    def lines(self):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace", "").startswith("senselink")]

    def test_false_keeps_the_counters_in_memory(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(directory)
        daemon = self.start("state_file: false\n")
        self.assertIsNone(daemon.energy)
        self.clock.advance(3600)
        self.assertAlmostEqual(daemon.meter.total_kwh(daemon.plugs["heater"]), 0.1)
        self.assertEqual(os.listdir(directory), [])
        said = [line for line in self.lines() if "kept in memory only" in line]
        self.assertEqual(len(said), 1)

    def test_start_lines_count_plugs_and_sockets(self):
        self.start("state_file: false\n")
        self.assertIn("3 plugs, 3 reported to Sense", "\n".join(self.lines()))
        [strip] = [line for line in self.lines() if "power strip" in line]
        self.assertTrue(strip.endswith(" with 3 sockets"), strip)

    def test_one_socket(self):
        self.start("state_file: false\n", plugs=ONE_PLUG)
        self.assertIn("1 plug, 1 reported to Sense", "\n".join(self.lines()))
        [strip] = [line for line in self.lines() if "power strip" in line]
        self.assertTrue(strip.endswith(" with 1 socket"), strip)

    def test_saved_every_state_save_interval(self):
        path = os.path.abspath(self.mktemp())
        daemon = self.start(f"state_file: {path}\nstate_save_interval: 10\n")
        self.assertEqual(daemon.energy.saves, 1)          # at start
        self.clock.advance(10)
        self.assertEqual(daemon.energy.saves, 2)
        self.assertTrue(any(f"Energy counters are kept in {path}, saved every 10 s" in line
                            for line in self.lines()))

    def test_an_unusable_location_stops_the_start(self):
        daemon = makeService(config_from_text(f"state_file: {self.mktemp()}/x/s.json\n" + PLUGS),
                             port=0, interface="127.0.0.1", reactor=self.clock, foreground=False)
        for name in ("udp", "tcp"):
            daemon.kasa.getServiceNamed(name).disownServiceParent()
        self.assertRaises(StartupError, daemon.startService)
        self.flushLoggedErrors()


class MutablePlugTests(unittest.TestCase):
    def setUp(self):
        clock = task.Clock()
        self.daemon = makeService(config_from_text("state_file: false\n" + PLUGS), port=0,
                                  interface="127.0.0.1", reactor=clock)

    def test_set_power_and_its_errors(self):
        self.daemon.set_power("heater", 750)
        self.assertEqual(self.daemon.plugs["heater"].watts, 750.0)
        self.assertRaises(KeyError, self.daemon.set_power, "nope", 1)
        self.assertRaises(TypeError, self.daemon.set_power, "lamp", 1)
        for bad in (-1, "lots", float("inf"), 100_001):
            self.assertRaises(ValueError, self.daemon.set_power, "heater", bad)
        self.assertEqual(self.daemon.plugs["heater"].watts, 750.0)

    def test_switch_uses_the_plugs_settings(self):
        self.daemon.switch("heater", True)
        self.assertEqual((self.daemon.plugs["heater"].watts, self.daemon.plugs["heater"].on),
                         (1500.0, True))                  # max_watts
        self.daemon.switch("heater", False)
        self.assertEqual((self.daemon.plugs["heater"].watts, self.daemon.plugs["heater"].on),
                         (2.0, False))                    # off_usage
        self.daemon.switch("kettle", True)
        self.assertEqual(self.daemon.plugs["kettle"].watts, 50.0)   # no max_watts: its power
