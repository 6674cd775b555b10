"""A reload that cannot be applied leaves the daemon as it was, and systemd hears READY;
any listen string or URL that `check` accepts can start, and what it cannot start it
refuses in one line (no traceback from a config value)."""

import os
import subprocess
import sys

import treq

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from senselink.service import makeService
from tests.support import LOOPBACK, free_port

CONFIG = """\
state_file: false
web:
  listen: "{listen}"
sources:
  - static:
      plugs:
        - Lamp: {{mac: "53:75:31:F6:4F:01", max_watts: 40}}
"""


class CheckRefusesWhatCannotStartTests(unittest.TestCase):
    def check(self, text):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(text)
        env = {k: v for k, v in os.environ.items() if k != "LISTEN_FDS"}
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                cwd=os.path.dirname(path), capture_output=True, text=True,
                                timeout=60, env=env)
        return path, result

    def test_listen_strings_and_urls(self):
        cases = [
            ("web: {listen: 'systemd:domain=INET:index=0'}\nsources: []\n",
             "systemd: listens on a socket systemd passes (LISTEN_FDS), and none was passed"),
            ("web: {listen: 'ssl:43302'}\nsources: []\n", "No such file or directory: "),
            ("web: {listen: 'tcp:99999'}\nsources: []\n",
             "the port must be a number from 0 to 65535, got '99999'"),
            ("web: {listen: 'unix:/nonexistent/senselink.sock'}\nsources: []\n",
             "the socket's directory '/nonexistent' does not exist"),
            ("sources:\n- http:\n    url: 'http://[::1'\n    plugs:\n"
             "    - a: {power_keypath: p}\n", "not a URL (Invalid IPv6 URL)"),
            ("sources:\n- http:\n    url: 'http://h:99999/x'\n    plugs:\n"
             "    - a: {power_keypath: p}\n", "the port is not a number from 0 to 65535"),
            ("sources:\n- hass:\n    url: 'ws://[::1'\n    auth_token: t\n    plugs:\n"
             "    - a: {entity_id: light.a}\n", "not a URL (Invalid IPv6 URL)"),
        ]
        for text, expected in cases:
            path, result = self.check(text)
            self.assertEqual(result.returncode, 1, (text, result.stdout, result.stderr))
            self.assertNotIn("Traceback", result.stderr)
            lines = result.stderr.splitlines()
            self.assertEqual(len(lines), 2, lines)
            self.assertTrue(lines[0].startswith(f"{path}:"), lines)
            self.assertIn(expected, lines[0])


class ReloadKeepsTheOldListenerTests(unittest.TestCase):
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.port = free_port()
        self.path = os.path.abspath(self.mktemp())
        self.write(f"tcp:{self.port}:interface={LOOPBACK}")
        self.daemon = makeService(self.path, port=0, interface=LOOPBACK)
        self.daemon.privilegedStartService()
        self.daemon.startService()
        self.addCleanup(self.daemon.stopService)

    def write(self, listen):
        with open(self.path, "w") as f:
            f.write(CONFIG.format(listen=listen))

    def log_text(self):
        return "\n".join(formatEvent(e) or "" for e in self.events)

    @defer.inlineCallbacks
    def get_plugs(self, port):
        response = yield treq.get(f"http://{LOOPBACK}:{port}/api/plugs", timeout=10,
                                  pool=HTTPConnectionPool(reactor, persistent=False))
        body = yield treq.json_content(response)
        return [plug["id"] for plug in body["plugs"]]

    @defer.inlineCallbacks
    def test_a_port_in_use_keeps_the_old_listener(self):
        busy = reactor.listenTCP(0, Factory(), interface=LOOPBACK)
        self.addCleanup(busy.stopListening)
        self.write(f"tcp:{busy.getHost().port}:interface={LOOPBACK}")
        summary = yield self.daemon.reloader.reload()
        self.assertEqual(summary.settings_changed, [])
        self.assertEqual(summary.settings_kept, ["web"])
        self.assertEqual((yield self.get_plugs(self.port)), ["Lamp"])
        text = self.log_text()
        self.assertIn(f"Reload: web changed in {self.path} but not applied: cannot listen for "
                      f"the web interface on {LOOPBACK}:{busy.getHost().port}: Address already "
                      f"in use; the web interface stays on tcp:{self.port}:interface={LOOPBACK}",
                      text)
        self.assertNotRegex(text, r"web changed in [^\n]*; applied")
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_a_free_port_moves_it_and_closes_the_old_one(self):
        new = free_port()
        self.write(f"tcp:{new}:interface={LOOPBACK}")
        summary = yield self.daemon.reloader.reload()
        self.assertEqual(summary.settings_changed, ["web"])
        self.assertEqual((yield self.get_plugs(new)), ["Lamp"])
        with self.assertRaises(Exception):
            yield self.get_plugs(self.port)
