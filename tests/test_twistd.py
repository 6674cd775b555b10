"""The daemon as users start it: twistd and python -m senselink, in subprocesses."""

import os
import signal
import socket
import subprocess
import sys

from senselink.kasa import messages
from tests.processes import DEMO, ROOT, Case, DaemonProcess, sense_replies, twistd
from tests.support import LOOPBACK, free_port


class TwistdTests(Case):
    def test_plugin_is_listed(self):
        result = self.run_quick([twistd(), "--help"])
        self.assertIn("senselink", result.stdout)

    def test_twistd_foreground_answers(self):
        port = free_port()
        daemon = DaemonProcess(self, [twistd(), "-n", "--pidfile=", "senselink", "-c", DEMO,
                                      "--port", str(port), "--interface", LOOPBACK])
        replies = sense_replies(port, 4)
        aliases = {r["system"]["get_sysinfo"]["alias"] for r in replies}
        self.assertEqual(aliases, {"NAS Server", "Ceiling Fan", "Space Heater", "Media Center"})
        output = daemon.stop()
        self.assertIn("Answering Kasa requests on UDP 127.0.0.1:%d" % port, output)
        self.assertNotIn("Traceback", output)

    def test_log_level_filters_twisted_lines_too(self):
        """-l WARNING: neither our INFO lines nor Twisted's own appear, under twistd or
        python -m senselink; DEBUG shows the per-request lines."""
        config = os.path.join(self.mktemp_dir(), "warn.yml")
        with open(config, "w") as f:       # a plug without a MAC: one WARNING at start
            f.write("sources:\n- static:\n    plugs:\n    - lamp: {max_watts: 5}\n")
        for command in ([twistd(), "-n", "--pidfile=", "senselink"], [sys.executable, "-m",
                                                                        "senselink"]):
            port = free_port()
            daemon = DaemonProcess(self, command + ["-c", config, "-p", str(port),
                                                    "--interface", LOOPBACK, "-l", "WARNING"])
            sense_replies(port, 1)
            output = daemon.stop()
            for line in ("starting on", "Closed", "SenseLink started", "Answering Kasa",
                         "Main loop terminated"):
                self.assertNotIn(line, output, command)
            self.assertIn("plug 'lamp' has no mac", output)
        port = free_port()
        daemon = DaemonProcess(self, [twistd(), "-n", "--pidfile=", "senselink", "-c", DEMO,
                                      "-p", str(port), "--interface", LOOPBACK, "-l", "DEBUG"])
        sense_replies(port, 4)
        self.assertIn("Sense request from 127.0.0.1: 4 replies", daemon.stop())

    def test_python_m_senselink_answers(self):
        port = free_port()
        daemon = DaemonProcess(self, [sys.executable, "-m", "senselink", "-c", DEMO,
                                      "-p", str(port), "--interface", LOOPBACK])
        self.assertEqual(len(sense_replies(port, 4)), 4)
        self.assertNotIn("Traceback", daemon.stop())

    def test_quiet_from_environment(self):
        port = free_port()
        env = {**os.environ, "PYTHONPATH": ROOT, "SENSE_RESPONSE": "false", "LOGLEVEL": "DEBUG"}
        process = subprocess.Popen([twistd(), "-n", "--pidfile=", "senselink", "-c", DEMO,
                                    "-p", str(port), "--interface", LOOPBACK],
                                   cwd=self.mktemp_dir(), env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            for _ in range(50):
                s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, port))
                self.assertRaises(socket.timeout, s.recv, 4096)
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0]
        self.assertIn("quiet mode", output)
        self.assertIn("Sense request from 127.0.0.1", output)   # DEBUG logs each request

    def test_bad_config_is_one_clear_error(self):
        path = os.path.join(self.mktemp_dir(), "bad.yml")
        with open(path, "w") as f:
            f.write("sources:\n- static:\n    plugs:\n    - a: {max_wats: 3}\n")
        result = self.run_quick([twistd(), "-n", "--pidfile=", "senselink", "-c", path])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"{path}:4: sources[0].static.plugs[0].a.max_wats: unknown static plug key "
                      "(did you mean 'max_watts'?)", result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_missing_config(self):
        result = self.run_quick([twistd(), "-n", "--pidfile=", "senselink", "-c", "/nonexistent.yml"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent.yml: cannot read config", result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_port_in_use(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind((LOOPBACK, 0))
            port = busy.getsockname()[1]
            result = self.run_quick([twistd(), "-n", "--pidfile=", "senselink", "-c", DEMO,
                                     "-p", str(port), "--interface", LOOPBACK])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"senselink: cannot listen on UDP 127.0.0.1:{port}: Address already in use",
                      result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_bad_interface(self):
        result = self.run_quick([twistd(), "-n", "--pidfile=", "senselink", "-c", DEMO,
                                 "--interface", "not-an-address"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("--interface must be an IP address", result.stdout + result.stderr)
        self.assertNotIn("Traceback", result.stderr + result.stdout)

    def test_version(self):
        result = self.run_quick([sys.executable, "-m", "senselink", "--version"])
        import senselink
        self.assertEqual(result.stdout.strip(), f"senselink {senselink.__version__}")


class EmbeddingExampleTests(Case):
    def test_embedding_example_changes_mutable_plug(self):
        port = free_port()
        daemon = DaemonProcess(self, [sys.executable, os.path.join(ROOT, "examples", "embedding.py"),
                                      DEMO, str(port)])
        replies = sense_replies(port, 4)
        heater = [r for r in replies if r["system"]["get_sysinfo"]["alias"] == "Space Heater"]
        # The example's first step sets the heater to 0 W (the config says 750 W).
        self.assertEqual(heater[0]["emeter"]["get_realtime"]["power"], 0)
        output = daemon.stop()
        self.assertIn("Mutable plug Heater set to 0", output)
        self.assertNotIn("Traceback", output)
