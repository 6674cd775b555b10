"""A reload that cannot be applied leaves the daemon as it was, and systemd hears READY
(a failing step in the middle of an apply is undone with the steps before it);
any listen string or URL that `check` accepts can start, and what it cannot start it
refuses in one line (no traceback from a config value)."""

import os
import socket
import subprocess
import sys

import treq

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory
from twisted.trial import unittest
from twisted.web.client import HTTPConnectionPool

from senselink.config import load
from senselink.reload import ReloadNotApplied, ReloadRejected
from senselink.reloadplan import plan
from senselink.reloadsteps import NotApplied, Step, StepFailed, ReloadSteps, apply
from senselink.service import makeService
from tests.deploy_support import LineServer, LogCapture, kinds_with_line
from tests.support import LOOPBACK, NotifySocket, free_port, wait_until

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


WHOLE = """\
state_file: false
web:
  listen: "{listen}"
sources:
  - static:
      plugs:
        - Lamp: {{alias: "{alias}", mac: "53:75:31:F6:4F:01", max_watts: {lamp}}}
        - Fan: {{mac: "53:75:31:F6:4F:02", max_watts: 20}}
  - mutable:
      plugs:
        - Heater: {{mac: "53:75:31:F6:4F:03", power: 5}}
  - aggregate:
      plugs:
        - Both: {{mac: "53:75:31:F6:4F:04", elements: [{elements}]}}
  - line:
      port: {port}
      plugs:
        - Dryer: {{mac: "53:75:31:F6:4F:05", max_watts: {dryer}}}
{extra}"""

# What each failed reload would also have changed: plugs, a source, the target.
CHANGES = dict(alias="Desk Lamp", lamp=60, elements="Lamp", dryer=2500,
               extra="  - static:\n      plugs:\n"
                     "        - Added: {mac: \"53:75:31:F6:4F:06\", max_watts: 7}\n"
                     "target: 127.0.0.2\n")


class ReloadCase(unittest.TestCase):
    """A daemon with a web listener, plugs of each kind and a connected source, under
    systemd (a real Unix datagram socket), and what it was before a reload."""

    @defer.inlineCallbacks
    def setUp(self):
        self.logs = LogCapture(self)
        self.notify = NotifySocket(self)
        self.server = LineServer()
        server_port = reactor.listenTCP(0, self.server, interface=LOOPBACK)
        self.addCleanup(server_port.stopListening)
        self.port = free_port()
        self.path = os.path.abspath(self.mktemp())
        self.values = dict(listen=f"tcp:{self.port}:interface={LOOPBACK}", alias="Lamp",
                           lamp=40, elements="Lamp, Fan", port=server_port.getHost().port,
                           dryer=3000, extra="")
        self.write()
        self.kinds = kinds_with_line()
        connected = self.server.next_connection()
        self.daemon = makeService(self.path, port=0, interface=LOOPBACK, kinds=self.kinds,
                                  environ={"NOTIFY_SOCKET": self.notify.env})
        self.daemon.privilegedStartService()
        self.daemon.startService()
        self.addCleanup(self.daemon.stopService)
        self.connection = yield connected
        self.daemon.set_power("Heater", 77)
        self.before = self.snapshot()
        self.reloads = 0
        self.assertEqual(self.notify.events(), ["READY=1"])

    def write(self, **changes):
        with open(self.path, "w") as f:
            f.write(WHOLE.format(**dict(self.values, **changes)))

    def snapshot(self):
        daemon = self.daemon
        return (daemon.config, daemon.plugs, daemon.web, list(daemon.sources),
                daemon.udp_protocol.target,
                [(plug, plug.alias, plug.value, plug.updated, plug.aggregate,
                  list(getattr(plug, "elements", ()))) for plug in daemon.plugs])

    @defer.inlineCallbacks
    def get_plugs(self, port):
        response = yield treq.get(f"http://{LOOPBACK}:{port}/api/plugs", timeout=10,
                                  pool=HTTPConnectionPool(reactor, persistent=False))
        body = yield treq.json_content(response)
        return {plug["id"]: plug["watts"] for plug in body["plugs"]}

    @defer.inlineCallbacks
    def assert_as_before(self, status):
        """Nothing changed; the old listener answers; systemd heard RELOADING=1, READY=1."""
        self.assertEqual(self.snapshot(), self.before)
        self.assertEqual(len(self.server.connections), 1)
        self.assertTrue(self.connection.open)
        self.assertEqual((yield self.get_plugs(self.port)),
                         {"Lamp": 40.0, "Fan": 20.0, "Heater": 77.0, "Both": 60.0,
                          "Dryer": 0.0})
        self.assertEqual(self.notify.events(),
                         ["READY=1"] + ["RELOADING=1", "READY=1"] * self.reloads)
        ready, text = self.notify.messages[-1]
        self.assertEqual(ready, "READY=1")
        self.assertTrue(text.startswith("STATUS=5 plugs, 3 reported to Sense; sources: "), text)
        self.assertIn("; the last reload was " + status, text)    # (STATUS= is clipped)



class ReloadKeepsTheOldListenerTests(ReloadCase):
    """A reload that fails leaves the old listener serving, the plugs and sources as they
    were, and tells systemd READY=1 after RELOADING=1, with a STATUS= saying why."""

    @defer.inlineCallbacks
    def test_a_port_in_use_keeps_the_old_listener(self):
        busy = reactor.listenTCP(0, Factory(), interface=LOOPBACK)
        self.addCleanup(busy.stopListening)
        self.write(listen=f"tcp:{busy.getHost().port}:interface={LOOPBACK}", **CHANGES)
        with self.assertRaises(ReloadNotApplied) as raised:
            yield self.daemon.reloader.reload()
        self.reloads += 1
        why = (f"web: cannot listen for the web interface on {LOOPBACK}:{busy.getHost().port}: "
               f"Address already in use; the web interface stays on "
               f"tcp:{self.port}:interface={LOOPBACK}")
        self.assertEqual(raised.exception.reason, why)
        yield self.assert_as_before("not applied: web: cannot listen for the web interface")
        lines = [line for line in self.logs.lines if "not applied" in line]
        self.assertEqual(lines, [f"Reload: {self.path} not applied: {why}; still serving the "
                                 f"previous config"])
        self.assertFalse(any("Reloaded" in line or "; applied" in line
                             for line in self.logs.lines), self.logs.text())

    @defer.inlineCallbacks
    def test_listens_that_cannot_start_are_rejected(self):
        for listen in ("tcp:99999", "unix:/nonexistent/senselink.sock", "ssl:43302"):
            self.write(listen=listen, **CHANGES)
            with self.assertRaises(ReloadRejected):
                yield self.daemon.reloader.reload()
            self.reloads += 1
            yield self.assert_as_before("rejected")

    @defer.inlineCallbacks
    def test_a_free_port_moves_it_and_closes_the_old_one(self):
        new = free_port()
        self.write(listen=f"tcp:{new}:interface={LOOPBACK}")
        summary = yield self.daemon.reloader.reload()
        self.assertEqual(summary.settings_changed, ["web"])
        self.assertEqual(summary.plan.listeners_moved, ("web",))
        self.assertEqual(list((yield self.get_plugs(new))), ["Lamp", "Fan", "Heater", "Both",
                                                             "Dryer"])
        with self.assertRaises(Exception):
            yield self.get_plugs(self.port)
        self.assertEqual(self.notify.events(), ["READY=1", "RELOADING=1", "READY=1"])


class FailingStepTests(ReloadCase):
    """A step that fails in the middle of an apply: the steps taken before it are undone."""

    @defer.inlineCallbacks
    def test_a_failing_step_in_the_middle_is_rolled_back(self):
        new_port = free_port()
        self.write(listen=f"tcp:{new_port}:interface={LOOPBACK}", **CHANGES)
        daemon = self.daemon
        new_config = load(self.path, self.kinds)
        steps = ReloadSteps(daemon, new_config, plan(daemon.config, new_config, self.kinds))
        taken = []

        def fail():
            # Everything up to here was done: new plugs live, new listener open.
            self.assertIs(daemon.plugs, steps.plugs)
            self.assertEqual(daemon.plugs["Lamp"].alias, "Desk Lamp")
            self.assertEqual(daemon.udp_protocol.target, "127.0.0.2")
            taken.append(listening(new_port))
            raise StepFailed("injected failure")

        order = steps.steps()
        names = [step.name for step in order]
        self.assertEqual(names[-1], "move the web listener")
        order.insert(len(order) - 1, Step("fail on purpose", fail))
        with self.assertRaises(NotApplied) as raised:
            apply(order)
        self.assertEqual(raised.exception.reason, "injected failure")
        self.assertEqual(taken, [[new_port]])
        self.assertEqual(self.snapshot(), self.before)
        self.assertIs(daemon.plugs["Fan"].aggregate, daemon.plugs["Both"])
        self.assertEqual(daemon.plugs["Heater"].watts, 77)
        self.assertEqual(daemon.config.target, None)
        self.assertEqual([plug.id for plug in daemon.plugs.reported], ["Heater", "Both", "Dryer"])
        # The new listener is closed again; the old one serves the old plugs.
        yield wait_until(lambda: not listening(new_port), "the new listener closed")
        self.assertEqual((yield self.get_plugs(self.port)),
                         {"Lamp": 40.0, "Fan": 20.0, "Heater": 77.0, "Both": 60.0,
                          "Dryer": 0.0})
        # The daemon reloads that config once the failure is gone.
        summary = yield daemon.reloader.reload()
        self.assertEqual(summary.plugs_added, ["Added"])
        self.assertEqual((yield self.get_plugs(new_port))["Lamp"], 60.0)


def listening(port):
    """[port] when something accepts TCP connections on it, else []."""
    probe = socket.socket()
    try:
        probe.settimeout(5)
        return [port] if probe.connect_ex((LOOPBACK, port)) == 0 else []
    finally:
        probe.close()
