"""The state file loses nothing it can keep: each plug's entry is checked on its own, a bad
one costs only its plug its counters, the file as it was is kept beside the new one, no
exception escapes the service, and only regular files are written."""

import json
import os
import signal
import stat
import sys

from twisted.internet import task
from twisted.trial import unittest

from senselink.energy import MAX_WH, EnergyService, check_plug_state
from senselink.errors import StartupError
from tests.energy.helpers import at, capture_log, setup_plugs, texts
from tests.processes import Case, DaemonProcess, limit_memory
from tests.support import LOOPBACK, free_port

HUGE = "9" * 401     # a total_wh no float holds

STATE = ('{"version": 1, "saved": 0, "plugs": {'
         '"heater": {"total_wh": ' + HUGE + ', "days": {}, "months": {}}, '
         '"lamp": {"total_wh": 123456, "days": {"2026-11-25": 6.0}, "months": {"2026-11": 6.0}}}}')


def corrupt_copies(directory):
    return sorted(name for name in os.listdir(directory) if ".corrupt-" in name)


class EntryTests(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "state.json")
        self.clock = task.Clock()
        self.clock.advance(at(2026, 11, 26, 8, 0))

    def start(self):
        plugs, meter = setup_plugs(self.clock)
        service = EnergyService(meter, self.path, self.clock, save_interval=60)
        service.startService()
        return plugs, meter, service

    def test_a_huge_integer_costs_only_its_plug(self):
        with open(self.path, "w") as f:
            f.write(STATE)
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.assertEqual(meter.total_kwh(plugs["heater"]), 0.0)
        self.assertAlmostEqual(meter.total_kwh(plugs["lamp"]), 123.456)
        self.assertEqual(meter["lamp"].day_energy(2026, 11), [(25, 0.006)])
        [named] = [t for t in texts(events) if "unusable (" in t]
        self.assertIn("plug 'heater' in the state file are unusable (total_wh is not a number "
                      "from 0 to 1e+15 Wh)", named)
        self.assertNotIn(HUGE[:30], "\n".join(texts(events)))
        # The file as it was, kept beside the new one before the first save replaced it.
        [copy] = corrupt_copies(self.dir)
        self.assertTrue(copy.startswith("state.json.corrupt-20261126T080000Z"), copy)
        with open(os.path.join(self.dir, copy)) as f:
            self.assertEqual(f.read(), STATE)
        self.assertTrue(any(f"kept as {self.dir}/{copy}" in t for t in texts(events)))
        # The periodic save goes on, and the stop saves what was kept.
        self.assertEqual(service.saves, 1)
        self.clock.advance(60)
        self.assertEqual(service.saves, 2)
        service.stopService()
        with open(self.path) as f:
            saved = json.load(f)["plugs"]
        self.assertAlmostEqual(saved["lamp"]["total_wh"], 123456.0)
        self.assertAlmostEqual(saved["heater"]["total_wh"], 120.0 * 60 / 3600)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_a_good_file_keeps_no_copy(self):
        with open(self.path, "w") as f:
            f.write(STATE.replace(HUGE, "5"))
        plugs, meter, service = self.start()
        self.addCleanup(service.stopService)
        self.assertAlmostEqual(meter.total_kwh(plugs["heater"]), 0.005)
        self.assertEqual(corrupt_copies(self.dir), [])

    def test_each_value_within_its_bounds(self):
        def entry(total=1.0, days=None, months=None):
            return {"total_wh": total, "days": days or {}, "months": months or {}}
        good = [entry(0), entry(MAX_WH), entry(10 ** 15), entry(days={"2000-01-01": 1.0}),
                entry(months={"2100-12": 2.0})]
        for saved in good:
            self.assertEqual(check_plug_state(saved), "", saved)
        bad = [entry(float("inf")), entry(float("nan")), entry(-1), entry(MAX_WH * 2),
               entry(int(HUGE)), entry(True), entry("5"),
               entry(days={"0001-01-01": 1.0}), entry(days={"9999-12-31": 1.0}),
               entry(days={"2026-11-26": int(HUGE)}), entry(days={"2026-11-26": float("inf")}),
               entry(months={"1999-12": 1.0}), entry(months={"2026-13": 1.0}),
               entry(days={"x" * 100000: 1.0})]
        for saved in bad:
            problem = check_plug_state(saved)
            self.assertNotEqual(problem, "")
            self.assertLess(len(problem), 300)
        self.assertIn("a date in the years 2000 to 2100",
                      check_plug_state(entry(days={"0001-01-01": 1.0})))

    def test_no_exception_escapes_the_service(self):
        """A meter that fails in an unforeseen way: logged, and the service goes on."""
        plugs, meter = setup_plugs(self.clock)

        def broken():
            raise RuntimeError("broken snapshot")
        meter.snapshot = broken
        service = EnergyService(meter, self.path, self.clock, save_interval=60)
        service.startService()
        self.clock.advance(60)
        self.assertTrue(service.running)
        service.stopService()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 3)   # start, timer, stop

    def test_a_failed_start_saves_nothing_at_stop(self):
        """A start refused (a directory where the file should be): the stop that follows
        neither fails nor writes."""
        plugs, meter = setup_plugs(self.clock)
        os.makedirs(self.path)
        service = EnergyService(meter, self.path, self.clock)
        self.assertRaises(StartupError, service.startService)
        self.assertIsNone(service.stopService())
        self.assertEqual(os.listdir(self.path), [])
        self.assertEqual(sorted(os.listdir(self.dir)), ["state.json"])

    def test_only_a_regular_file_is_replaced(self):
        """A device node put where the state file was: the save fails, the node stays."""
        if os.getuid() != 0:
            raise unittest.SkipTest("device nodes are made with mknod, which needs root")
        events = capture_log(self)
        plugs, meter, service = self.start()
        os.unlink(self.path)
        os.mknod(self.path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        self.clock.advance(60)
        service.stopService()
        self.assertTrue(stat.S_ISCHR(os.lstat(self.path).st_mode))
        self.assertEqual(sorted(os.listdir(self.dir)), ["state.json"])
        self.assertTrue(any(f"Cannot write energy state file {self.path}: cannot write "
                            f"{self.path}: it is a character device, not a regular file" in t
                            for t in texts(events)))

    def test_a_symlink_is_written_through(self):
        target = os.path.join(self.dir, "real.json")
        with open(target, "w") as f:
            f.write(STATE.replace(HUGE, "5"))
        os.symlink("real.json", self.path)
        plugs, meter, service = self.start()
        service.stopService()
        self.assertEqual(os.readlink(self.path), "real.json")
        with open(target) as f:
            self.assertAlmostEqual(json.load(f)["plugs"]["lamp"]["total_wh"], 123456.0)


CONFIG = """\
state_file: {state}
sources:
- static:
    plugs:
    - heater: {{max_watts: 1, mac: '53:75:31:00:0C:01'}}
    - lamp: {{max_watts: 1, mac: '53:75:31:00:0C:02'}}
"""


class DaemonTests(Case):
    def test_a_huge_integer_at_start_and_stop(self):
        """The daemon as a user runs it: the lamp keeps its 123456 Wh through start and
        SIGTERM, the heater's entry is named, and the file as it was is kept."""
        directory = self.mktemp_dir()
        state = os.path.join(directory, "state.json")
        with open(state, "w") as f:
            f.write(STATE)
        config = os.path.join(directory, "c.yml")
        with open(config, "w") as f:
            f.write(CONFIG.format(state=state))
        daemon = DaemonProcess(self, [sys.executable, "-m", "senselink", "-c", config, "-p",
                                      str(free_port()), "--interface", LOOPBACK],
                               preexec_fn=limit_memory())
        daemon.wait_for("Energy counters are kept in")
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.process.wait(timeout=20), 0)
        output = daemon.stop()
        self.assertNotIn("Traceback", output)
        self.assertIn("Energy counters of plug 'heater' in the state file are unusable", output)
        self.assertIn("restored from", output)
        with open(state) as f:
            saved = json.load(f)["plugs"]
        self.assertGreaterEqual(saved["lamp"]["total_wh"], 123456.0)
        self.assertLess(saved["heater"]["total_wh"], 1.0)
        [copy] = corrupt_copies(directory)
        with open(os.path.join(directory, copy)) as f:
            self.assertEqual(f.read(), STATE)
