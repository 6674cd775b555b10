"""The state file and its service: round trip, periodic saves, corrupt and unwritable files,
and where the file lives by default."""

import json
import os
import pwd
import shutil
import sys
import tempfile

from twisted.internet import task
from twisted.trial import unittest

from senselink import energy, excerpt, regularfile
from senselink.energy import EnergyService, statefile
from senselink.energy.service import STATE_DIRECTORY_VARIABLES
from senselink.errors import StartupError
from tests.energy.helpers import at, capture_log, setup_plugs, texts
from tests.support import start_service


class StateFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "state.json")
        self.clock = task.Clock()
        self.clock.advance(at(2026, 11, 26, 8, 0))

    def start(self):
        plugs, meter = setup_plugs(self.clock)
        service = EnergyService(meter, self.path, self.clock)
        service.startService()
        return plugs, meter, service

    def test_round_trip(self):
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.assertTrue(any("No energy state file" in t for t in texts(events)))
        plugs["tv"].set_power(60.0)
        self.clock.advance(1800)
        service.stopService()
        self.assertEqual(service.saves, 3)    # at start, one periodic (the clock jumped 30 min), on stop
        with open(self.path) as f:
            saved = json.load(f)
        self.assertEqual(saved["version"], energy.STATE_VERSION)
        self.assertAlmostEqual(saved["plugs"]["heater"]["total_wh"], 60.0)
        self.assertEqual(saved["plugs"]["heater"]["days"], {"2026-11-26": 60.0})
        self.assertEqual(sorted(os.listdir(self.dir)), ["state.json"])   # no temporary files

        plugs2, meter2, service2 = self.start()
        self.addCleanup(service2.stopService)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["heater"]), 0.06)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["media"]), 0.03)
        self.assertEqual(meter2["heater"].day_energy(2026, 11), [(26, 0.06)])
        self.clock.advance(1800)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["heater"]), 0.12)

    def test_kept_kwh_is_what_the_file_has(self):
        """What a crash cannot take back: the last save's total, not the running one."""
        plugs, meter = setup_plugs(self.clock)
        heater = plugs["heater"]
        self.assertGreater(heater.watts, 0.0)
        self.assertFalse(meter.kept)
        self.assertEqual(meter.kept_kwh(heater), 0.0)           # no state file: all of it
        service = EnergyService(meter, self.path, self.clock)
        self.assertIsNone(meter.kept_kwh(heater))               # not saved or loaded yet
        service.startService()
        self.assertEqual(meter.kept_kwh(heater), 0.0)           # saved at start
        self.clock.advance(energy.SAVE_INTERVAL / 2)
        self.assertGreater(meter.total_kwh(heater), 0.0)
        self.assertEqual(meter.kept_kwh(heater), 0.0)
        self.clock.advance(energy.SAVE_INTERVAL / 2)
        self.assertEqual(meter.kept_kwh(heater), meter.total_kwh(heater))
        kept = meter.kept_kwh(heater)
        self.clock.advance(10)
        service.stopService()
        self.assertGreater(meter.kept_kwh(heater), kept)        # the last save, at stop
        plugs2, meter2, service2 = self.start()                 # restored: as the file has it
        self.addCleanup(service2.stopService)
        self.assertAlmostEqual(meter2.kept_kwh(plugs2["heater"]), meter.kept_kwh(heater))

    def test_saved_every_few_minutes(self):
        plugs, meter, service = self.start()
        self.addCleanup(service.stopService)
        self.assertEqual(service.saves, 1)     # at start
        self.clock.advance(energy.SAVE_INTERVAL - 1)
        self.assertEqual(service.saves, 1)
        self.clock.advance(1)
        self.assertEqual(service.saves, 2)
        with open(self.path) as f:
            self.assertAlmostEqual(json.load(f)["plugs"]["heater"]["total_wh"],
                                   120.0 * energy.SAVE_INTERVAL / 3600)

    def test_corrupt_file_is_logged_kept_aside_and_counters_start_fresh(self):
        kept = set()
        for garbage in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"version": 99, "plugs": {}}',
                        b'{"version": 1}'):
            with open(self.path, "wb") as f:
                f.write(garbage)
            events = capture_log(self)
            plugs, meter, service = self.start()
            self.assertEqual(meter.total_kwh(plugs["heater"]), 0.0)
            self.assertTrue(any("is corrupt" in t and "start at zero" in t
                                for t in texts(events)), garbage)
            # Kept as <name>.corrupt-<UTC time>, never over an earlier one (same second here).
            aside = {name for name in os.listdir(self.dir) if ".corrupt-" in name} - kept
            self.assertEqual(len(aside), 1, os.listdir(self.dir))
            (name,) = aside
            self.assertTrue(name.startswith("state.json.corrupt-20261126T080000Z"), name)
            with open(os.path.join(self.dir, name), "rb") as f:
                self.assertEqual(f.read(), garbage)
            kept.add(name)
            self.clock.advance(60)
            service.stopService()           # a fresh, valid file replaces it
            with open(self.path) as f:
                self.assertAlmostEqual(json.load(f)["plugs"]["heater"]["total_wh"], 2.0)
            os.unlink(self.path)
            self.clock.advance(-60)
        self.assertEqual(len(kept), 5)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_an_unreadable_file_stops_the_start_and_is_left_alone(self):
        self.path = os.path.abspath(self.path)
        os.makedirs(self.path)          # what cannot be read as a file, even by root
        plugs, meter = setup_plugs(self.clock)
        service = EnergyService(meter, self.path, self.clock)
        error = self.assertRaises(StartupError, service.startService)
        self.assertIn(f"energy state file unusable: cannot read {self.path}: it is a directory",
                      str(error))
        self.assertTrue(os.path.isdir(self.path))
        self.assertEqual([n for n in os.listdir(self.dir) if "corrupt" in n], [])

    def test_an_unwritable_location_stops_the_start(self):
        self.path = os.path.join(self.dir, "missing-dir", "state.json")
        plugs, meter = setup_plugs(self.clock)
        service = EnergyService(meter, self.path, self.clock)
        error = self.assertRaises(StartupError, service.startService)
        self.assertIn("the directory", str(error))
        self.assertIn("does not exist", str(error))
        self.assertIn("state_file: false", str(error))

    def test_the_location_is_checked_as_the_daemon_user(self):
        """A file left by a first run as another user (root) cannot be read: one line, untouched.

        Run as the user nobody: the check module and the two it imports (standard
        library only) are copied next to the file, for a Python that user may run.
        """
        import subprocess
        if os.getuid() != 0:
            raise unittest.SkipTest("acting as another user needs root (CI runs as root)")
        python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        os.chmod(directory, 0o755)
        path = os.path.join(directory, "state.json")
        with open(path, "w") as f:
            f.write("{}")
        os.chmod(path, 0o600)
        shutil.copy(statefile.__file__, os.path.join(directory, "statefile.py"))
        package = os.path.join(directory, "senselink")
        os.makedirs(package)
        os.chmod(package, 0o755)
        open(os.path.join(package, "__init__.py"), "w").close()
        for module in (excerpt, regularfile):
            shutil.copy(module.__file__, package)
        nobody = pwd.getpwnam("nobody")

        def become_nobody():
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        result = subprocess.run(
            [python, "-c", "import sys, statefile; print(statefile.check_location(sys.argv[1]))",
             path], capture_output=True, text=True, timeout=60, preexec_fn=become_nobody,
            cwd=directory, env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(result.stdout.strip(), f"cannot read {path}: Permission denied",
                         result.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), "{}")

    def test_unusable_plug_entry_is_skipped(self):
        state = {"version": 1, "saved": 0, "plugs": {
            "heater": {"total_wh": -5, "days": {}, "months": {}},
            "lamp": {"total_wh": 7.0, "days": {"2026-11-26": 7.0}, "months": {"2026-11": 7.0}},
            "tv": {"total_wh": 1.0, "days": {"yesterday": 1.0}, "months": {}},
            "gone": {"total_wh": 1.0, "days": {}, "months": {}},
        }}
        with open(self.path, "w") as f:
            json.dump(state, f)
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.addCleanup(service.stopService)
        self.assertEqual(meter.total_kwh(plugs["heater"]), 0.0)
        self.assertEqual(meter.total_kwh(plugs["tv"]), 0.0)
        self.assertAlmostEqual(meter.total_kwh(plugs["lamp"]), 0.007)
        self.assertEqual(len([t for t in texts(events) if "are unusable" in t]), 2)

    def test_a_location_that_breaks_while_running_is_logged_once(self):
        sub = os.path.join(self.dir, "sub")
        os.makedirs(sub)
        self.path = os.path.join(sub, "state.json")
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.assertEqual(service.saves, 1)
        shutil.rmtree(sub)
        for _ in range(3):
            self.clock.advance(energy.SAVE_INTERVAL)
        self.assertEqual(service.saves, 1)
        failures = [t for t in texts(events) if "Cannot write energy state file" in t]
        self.assertEqual(len(failures), 1)              # once, not every minute
        self.assertIn("retried every 60 s", failures[0])
        os.makedirs(sub)
        self.clock.advance(energy.SAVE_INTERVAL)
        self.assertEqual(service.saves, 2)
        self.assertTrue(any("written again" in t for t in texts(events)))
        shutil.rmtree(sub)
        service.stopService()
        final = [t for t in texts(events) if "Cannot write energy state file" in t][-1]
        self.assertNotIn("retried", final)
        self.assertIn("the counts since its last save are lost", final)


class StateDirectoryTests(unittest.TestCase):
    """Where a relative state file lives: the platform's state directory, else the working one."""

    def test_order_of_the_variables(self):
        cwd = os.getcwd()
        self.assertEqual(energy.state_directory({}), (cwd, None))
        self.assertEqual(energy.state_directory({"STATE_DIRECTORY": "/var/lib/senselink"}),
                         ("/var/lib/senselink", "STATE_DIRECTORY"))
        # systemd lists several directories with ':' when StateDirectory= names several.
        self.assertEqual(energy.state_directory({"STATE_DIRECTORY": "/var/lib/a:/var/lib/b"}),
                         ("/var/lib/a", "STATE_DIRECTORY"))
        both = {"STATE_DIRECTORY": "/var/lib/senselink", "SENSELINK_STATE_DIR": "/data"}
        self.assertEqual(energy.state_directory(both), ("/data", "SENSELINK_STATE_DIR"))
        self.assertEqual(energy.state_directory({"SENSELINK_STATE_DIR": ""}), (cwd, None))
        self.assertEqual(energy.state_directory({"SENSELINK_STATE_DIR": "rel"}),
                         (os.path.join(cwd, "rel"), "SENSELINK_STATE_DIR"))

    def test_state_file_path(self):
        env = {"STATE_DIRECTORY": "/var/lib/senselink"}
        self.assertEqual(energy.state_file_path(None, env),
                         "/var/lib/senselink/senselink-state.json")
        self.assertEqual(energy.state_file_path("counters.json", env),
                         "/var/lib/senselink/counters.json")
        self.assertEqual(energy.state_file_path("/srv/counters.json", env), "/srv/counters.json")
        self.assertEqual(energy.state_file_path(None, {}),
                         os.path.join(os.getcwd(), "senselink-state.json"))

    def start_daemon(self, extra=""):
        events = capture_log(self)
        daemon = start_service(self, extra + "sources:\n  - static:\n      plugs:\n"
                                     "        - Lamp:\n            mac: 53:75:31:F6:4D:01\n"
                                     "            max_watts: 10\n")
        return daemon, [t for t in texts(events) if "Energy counters are kept in" in t]

    def test_the_daemon_logs_the_full_path_and_where_it_comes_from(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        self.patch(os, "environ", {**os.environ, "SENSELINK_STATE_DIR": directory})
        daemon, lines = self.start_daemon()
        path = os.path.join(directory, "senselink-state.json")
        self.assertEqual(daemon.energy.path, path)
        self.assertEqual(lines, [f"Energy counters are kept in {path}, saved every 60 s (in the "
                                 f"state directory $SENSELINK_STATE_DIR)"])
        self.assertTrue(os.path.exists(path))       # written at start

    def test_working_directory_is_named_as_such(self):
        environ = {k: v for k, v in os.environ.items() if k not in STATE_DIRECTORY_VARIABLES}
        self.patch(os, "environ", environ)
        daemon, lines = self.start_daemon(f"state_file: {self.mktemp()}\n")
        [line] = lines
        self.assertIn(os.getcwd(), line)
        self.assertIn("in the working directory", line)
        elsewhere = tempfile.mkdtemp()          # outside the working directory
        self.addCleanup(shutil.rmtree, elsewhere)
        absolute = os.path.join(elsewhere, "counters.json")
        daemon, lines = self.start_daemon(f"state_file: {absolute}\n")
        self.assertEqual(lines, [f"Energy counters are kept in {absolute}, saved every 60 s "
                                 f"(as configured by state_file)"])
