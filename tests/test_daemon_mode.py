"""The daemon as a process: twistd daemon mode end to end, and SIGHUP reloads.

Every process here is started by the test and signalled by the PID it got
(for the detached daemon: the PID in the pid file it wrote, checked to be
running our config before it is signalled).
"""

import os
import re
import signal
import socket
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.support import wait_until
from tests.deploy_support import (PORT_LINES, ask_udp, by_alias, child_env, spawn, stopped_cleanly,
                                  twistd_executable)

CONFIG = """\
sources:
  - static:
      plugs:
        - Lamp:
            alias: "{alias}"
            mac: 53:75:31:F6:4E:01
            max_watts: 60
  - mutable:
      plugs:
        - Heater:
            alias: "Heater"
            mac: 53:75:31:F6:4E:02
            power: 800
{extra}"""

EXTRA_PLUG = """\
  - static:
      plugs:
        - Kettle:
            alias: "Kettle"
            mac: 53:75:31:F6:4E:03
            max_watts: 1500
"""


THREE_SOURCES = """\
sources:
  - static:
      plugs:
        - Lamp: {{alias: "{alias}", mac: "53:75:31:F6:4E:11", max_watts: 60}}
        - TV: {{mac: "53:75:31:F6:4E:12", max_watts: 90}}
  - mutable:
      plugs:
        - Heater: {{mac: "53:75:31:F6:4E:13", power: 800}}
  - aggregate:
      plugs:
        - Room: {{mac: "53:75:31:F6:4E:14", elements: [Lamp, TV]}}
"""


def write_config(path, alias="Lamp", extra="", state_file=None):
    text = CONFIG.format(alias=alias, extra=extra)
    if state_file:
        text += f"state_file: {state_file}\n"
    with open(path, "w") as f:
        f.write(text)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def is_running(pid):
    """True while C{pid} exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class DaemonModeTests(unittest.TestCase):
    """`twistd --pidfile P --logfile L senselink -c C` detaches and behaves like a daemon."""

    def setUp(self):
        self.twistd = twistd_executable()
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.config = os.path.join(self.dir, "config.yml")
        self.pidfile = os.path.join(self.dir, "senselink.pid")
        self.logfile = os.path.join(self.dir, "senselink.log")
        self.pid = None
        self.addCleanup(self._kill_leftover)

    def _kill_leftover(self):
        # Only the daemon this test started, and only while it still runs our config.
        if self.pid and is_running(self.pid) and self._ours(self.pid):
            os.kill(self.pid, signal.SIGKILL)

    def _ours(self, pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return self.config.encode() in f.read()
        except FileNotFoundError:
            return False

    @defer.inlineCallbacks
    def start_daemon(self):
        argv = [self.twistd, "--pidfile", self.pidfile, "--logfile", self.logfile,
                "senselink", "-c", self.config, "-p", "0", "--interface", "127.0.0.1"]
        launcher = spawn(argv, child_env(), path=self.dir)
        code = yield launcher.ended
        self.assertEqual(code, 0, launcher.output)   # the launcher returns once detached
        self.assertTrue(os.path.exists(self.pidfile), "no pid file written")
        self.pid = int(read(self.pidfile).strip())
        self.assertNotEqual(self.pid, launcher.pid)
        self.assertTrue(is_running(self.pid))
        self.assertTrue(self._ours(self.pid))
        yield wait_until(lambda: "SenseLink started from" in read(self.logfile))
        port = int(re.search(PORT_LINES, read(self.logfile)).group(1))
        return port

    @defer.inlineCallbacks
    def stop_daemon(self):
        self.assertTrue(self._ours(self.pid))
        os.kill(self.pid, signal.SIGTERM)
        yield wait_until(lambda: not is_running(self.pid) and not os.path.exists(self.pidfile))

    @defer.inlineCallbacks
    def test_detach_pidfile_logfile_answer_and_sigterm(self):
        write_config(self.config)
        port = yield self.start_daemon()
        self.assertEqual(by_alias((yield ask_udp(port, 2))), {"Lamp": 60, "Heater": 800})
        log = read(self.logfile)
        self.assertIn("Plug Heater (Heater, 53:75:31:F6:4E:02, mutable): 800.0 W, reported", log)
        yield self.stop_daemon()
        log = read(self.logfile)
        self.assertIn("Received SIGTERM, shutting down.", log)
        self.assertIn("Main loop terminated.", log)
        self.assertIn("Server Shut Down.", log)
        self.assertNotIn("Traceback", log)
        self.assertFalse(os.path.exists(self.pidfile))

    @defer.inlineCallbacks
    def test_port_in_use_is_one_line_and_no_traceback(self):
        write_config(self.config)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            port = busy.getsockname()[1]
            argv = [self.twistd, "--pidfile", self.pidfile, "--logfile", self.logfile,
                    "senselink", "-c", self.config, "-p", str(port), "--interface", "127.0.0.1"]
            launcher = spawn(argv, child_env(), path=self.dir)
            code = yield launcher.ended
        self.assertNotEqual(code, 0)
        self.assertEqual(launcher.output.strip(),
                         f"senselink: cannot listen on UDP 127.0.0.1:{port}: Address already in use")
        self.assertNotIn("Traceback", read(self.logfile))
        self.assertFalse(os.path.exists(self.pidfile))

    @defer.inlineCallbacks
    def test_state_saved_on_sigterm(self):
        """SIGTERM saves the energy state file."""
        state = os.path.join(self.dir, "energy.state.json")
        write_config(self.config, state_file=state)
        port = yield self.start_daemon()
        yield ask_udp(port, 2)
        yield wait_until(lambda: os.path.exists(state))    # written at start
        os.unlink(state)
        yield self.stop_daemon()
        self.assertTrue(os.path.exists(state), read(self.logfile))
        self.assertGreater(os.path.getsize(state), 0)

    @defer.inlineCallbacks
    def test_sighup_reloads_the_detached_daemon(self):
        write_config(self.config)
        port = yield self.start_daemon()
        write_config(self.config, alias="Desk Lamp", extra=EXTRA_PLUG)
        os.kill(self.pid, signal.SIGHUP)
        yield wait_until(lambda: "Reloaded " in read(self.logfile))
        self.assertEqual(by_alias((yield ask_udp(port, 3))),
                         {"Desk Lamp": 60, "Heater": 800, "Kettle": 1500})
        yield self.stop_daemon()


class ForegroundReloadTests(unittest.TestCase):
    """SIGHUP under `twistd --nodaemon` and `python -m senselink`: valid and invalid configs."""

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.config = os.path.join(self.dir, "config.yml")
        write_config(self.config)

    @defer.inlineCallbacks
    def check_reloads(self, argv):
        proc = spawn(argv + ["-c", self.config, "-p", "0", "--interface", "127.0.0.1"],
                     child_env(), path=self.dir)
        self.addCleanup(proc.stop)
        port = int((yield proc.wait_for(PORT_LINES)).group(1))
        yield proc.wait_for("SenseLink started from")
        self.assertEqual(by_alias((yield ask_udp(port, 2))), {"Lamp": 60, "Heater": 800})

        # A valid new config: applied, same port.
        write_config(self.config, alias="Desk Lamp", extra=EXTRA_PLUG)
        proc.transport.signalProcess("HUP")
        yield proc.wait_for(r"Reloaded .*3 plugs \(1 added, 0 removed, 2 kept, 1 with a new "
                            r"alias\); sources: 3 \(0 kept, 0 started, 3 without a connection\)")
        self.assertEqual(by_alias((yield ask_udp(port, 3))),
                         {"Desk Lamp": 60, "Heater": 800, "Kettle": 1500})

        # An invalid one: rejected with the start-up error, the running config stays.
        with open(self.config, "a") as f:
            f.write("        - Broken:\n            max_watts: lots\n")
        proc.transport.signalProcess("HUP")
        yield proc.wait_for(r"Reload rejected, still running the previous config:")
        yield proc.wait_for(re.escape(
            f"senselink: invalid config:\n\t{self.config}:21: "
            "sources[2].static.plugs[1].Broken.max_watts: expected a number from 0 to 1000000000 W, got 'lots' (str)"))
        self.assertEqual(by_alias((yield ask_udp(port, 3))),
                         {"Desk Lamp": 60, "Heater": 800, "Kettle": 1500})
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), (proc.reason, proc.output))
        self.assertNotIn("Traceback", proc.output)

    def test_twistd_nodaemon(self):
        twistd = twistd_executable()
        return self.check_reloads([twistd, "--nodaemon", "--pidfile=", "senselink"])

    def test_python_m_senselink(self):
        return self.check_reloads([sys.executable, "-m", "senselink"])

    @defer.inlineCallbacks
    def test_the_reload_line_counts_every_source_and_names_new_aliases(self):
        """Before: `sources: 0 kept, 0 stopped, 0 started` for three sources, no word of an alias."""
        def write(alias):
            with open(self.config, "w") as f:
                f.write(THREE_SOURCES.format(alias=alias))
        write("Lamp")
        proc = spawn([sys.executable, "-m", "senselink", "-c", self.config, "-p", "0",
                      "--interface", "127.0.0.1"], child_env(), path=self.dir)
        self.addCleanup(proc.stop)
        yield proc.wait_for("SenseLink started from")
        write("Desk Lamp")
        proc.transport.signalProcess("HUP")
        yield proc.wait_for(r"Reloaded .*\n")
        self.assertIn("Reload: plug Lamp now has the alias 'Desk Lamp' (was 'Lamp')\n",
                      proc.output)
        self.assertIn(f"Reloaded {self.config}: 4 plugs (0 added, 0 removed, 4 kept, 1 with a "
                      f"new alias); sources: 3 (0 kept, 0 started, 3 without a connection), "
                      f"0 stopped\n", proc.output)

        write("B" * 10_000)         # refused (names are at most 128 characters), in short lines
        proc.transport.signalProcess("HUP")
        yield proc.wait_for(r"(?s)Reloaded .*Reload rejected[^\n]*\n")
        yield proc.stop()
        self.assertLessEqual(max(len(line) for line in proc.output.splitlines()), 600)
        self.assertIn("expected text of at most 128 characters, got 10000", proc.output)
        self.assertNotIn("Traceback", proc.output)
