"""Live reload, in process: valid and invalid configs, plugs, sources, listeners, SIGHUP."""

import os
import signal

from twisted.internet import defer, reactor
from twisted.trial import unittest

from senselink import tap
from senselink.reload import ReloadRejected
from senselink.service import makeService
from senselink import config as _config
from tests.deploy_support import (LineServer, LogCapture, ask_udp, by_alias, kinds_with_line,
                                  with_timeout)

CONFIG = """\
state_file: {state}
sources:
  - static:
      plugs:
        - Lamp:
            alias: "Lamp"
            mac: 53:75:31:F6:4C:01
            max_watts: {lamp_watts}
        - Old:
            alias: "Old"
            mac: 53:75:31:F6:4C:02
            max_watts: 5
        - TV:
            mac: 53:75:31:F6:4C:03
            max_watts: 90
        - Soundbar:
            mac: 53:75:31:F6:4C:04
            max_watts: 25
  - mutable:
      plugs:
        - Heater:
            alias: "{heater_alias}"
            mac: 53:75:31:F6:4C:05
            power: {heater_power}
  - aggregate:
      plugs:
        - Media:
            alias: "Media"
            mac: 53:75:31:F6:4C:06
            elements: [TV, Soundbar]
  - line:
      port: {port}
      plugs:
        - Dryer:
            alias: "Dryer"
            mac: 53:75:31:F6:4C:07
            max_watts: {dryer_max}
"""

NEW_PLUG = """\
  - static:
      plugs:
        - Added:
            alias: "Added"
            mac: 53:75:31:F6:4C:08
            max_watts: 7
"""


class ReloadTests(unittest.TestCase):

    @defer.inlineCallbacks
    def setUp(self):
        self.server = LineServer()
        self.server_port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(self.server_port.stopListening)
        self.values = dict(lamp_watts=10, heater_alias="Heater", heater_power=5,
                           port=self.server_port.getHost().port, dryer_max=3000)
        self.path = self.mktemp()
        # A state file of its own: values set at run time in one test stay out of the next.
        self.values["state"] = os.path.abspath(self.path) + ".state.json"
        self.write()
        self.kinds = kinds_with_line()
        self.logs = LogCapture(self)
        config = _config.load(self.path, self.kinds)
        self.service = makeService(config, port=0, interface="127.0.0.1", kinds=self.kinds)
        connected = self.server.next_connection()
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self._stop)
        self.connection = yield connected

    def _stop(self):
        if self.service.running:
            return self.service.stopService()

    def write(self, extra="", **changes):
        self.values.update(changes)
        with open(self.path, "w") as f:
            f.write(CONFIG.format(**self.values) + extra)

    @defer.inlineCallbacks
    def send_line(self, line, source=None):
        source = source or self.service.sources[0]
        got = source.next_line()
        (self.connection if source is self.service.sources[0] else self.server.open[-1]
         ).sendLine(line.encode())
        yield got

    @defer.inlineCallbacks
    def test_valid_reload_keeps_listeners_plugs_and_connections(self):
        """A valid config replaces the running one; listeners, values and the connection stay."""
        service = self.service
        udp, tcp_port, port = service.udp_protocol.transport, service.tcp_port, service.udp_port
        plug_set = service.plugs
        yield self.send_line("Dryer 1200")
        service.set_power("Heater", 77)
        dryer, heater = service.plugs["Dryer"], service.plugs["Heater"]
        before = by_alias((yield ask_udp(port, 5)))
        self.assertEqual(before["Dryer"], 1200)
        self.assertEqual(before["Old"], 5)

        self.write(lamp_watts=20, heater_alias="Space Heater", extra=NEW_PLUG)
        with open(self.path) as f:
            text = f.read().replace(
                "        - Old:\n            alias: \"Old\"\n            mac: 53:75:31:F6:4C:02\n"
                "            max_watts: 5\n", "")
        with open(self.path, "w") as f:
            f.write(text)
        summary = yield service.reloader.reload()

        # Listeners untouched.
        self.assertIs(service.udp_protocol.transport, udp)
        self.assertEqual(service.tcp_port, tcp_port)
        self.assertEqual(service.udp_port, port)
        # A new plug set, served by the reply cache at once.
        self.assertIsNot(service.plugs, plug_set)
        self.assertIs(service.replies.plugs, service.plugs)
        # Identity unchanged: same objects, values kept, config attributes followed.
        self.assertIs(service.plugs["Dryer"], dryer)
        self.assertIs(service.plugs["Heater"], heater)
        self.assertEqual(heater.watts, 77)
        self.assertEqual(heater.alias, "Space Heater")
        self.assertEqual(service.plugs["Lamp"].watts, 20)
        self.assertEqual(sorted(summary.plugs_added), ["Added"])
        self.assertEqual(summary.plugs_removed, ["Old"])
        self.assertEqual(summary.plugs_reset, ["Lamp"])
        # The unchanged line source kept its service and its one connection.
        self.assertEqual(len(summary.sources_kept), 1)
        self.assertEqual(summary.sources_stopped, [])
        self.assertEqual(len(self.kinds["line"].made), 1)
        self.assertEqual(len(self.server.connections), 1)
        self.assertTrue(self.connection.open)
        # ...and it still drives the plug Sense sees.
        yield self.send_line("Dryer 1500")
        after = by_alias((yield ask_udp(port, 5)))
        self.assertEqual(after, {"Lamp": 20, "Space Heater": 77, "Media": 115,
                                 "Dryer": 1500, "Added": 7})
        self.assertIs(service.config.path, self.path)
        self.assertTrue(any("Reloaded" in line and "1 added, 1 removed" in line
                            for line in self.logs.lines), self.logs.text())

    @defer.inlineCallbacks
    def test_changed_source_is_restarted(self):
        """A source whose settings changed gets a new connection; its plug keeps its value."""
        yield self.send_line("Dryer 900")
        dryer = self.service.plugs["Dryer"]
        reconnected = self.server.next_connection()
        self.write(dryer_max=2500)
        summary = yield self.service.reloader.reload()
        new_connection = yield reconnected
        yield with_timeout(self.connection.lost)
        self.assertEqual(len(summary.sources_stopped), 1)
        self.assertEqual(len(summary.sources_started), 1)
        self.assertIn("Reload: stopping the line source #4 (Dryer) (plugs changed: Dryer)",
                      self.logs.lines)
        self.assertEqual(len(self.kinds["line"].made), 2)
        self.assertEqual(self.service.sources, [self.kinds["line"].made[1]])
        self.assertIsNot(new_connection, self.connection)
        self.assertIs(self.service.plugs["Dryer"], dryer)
        self.assertEqual(dryer.watts, 900)
        got = self.service.sources[0].next_line()
        new_connection.sendLine(b"Dryer 950")
        yield got
        self.assertEqual(by_alias((yield ask_udp(self.service.udp_port, 5)))["Dryer"], 950)

    @defer.inlineCallbacks
    def test_invalid_reload_is_rejected(self):
        """An invalid config: the start-up error is logged and the running config stays."""
        service = self.service
        service.set_power("Heater", 42)
        config = service.config
        with open(self.path, "a") as f:
            f.write("        - Broken:\n            max_watts: lots\n")
        startup = self.assertRaises(SystemExit, tap.makeService,
                                    self._options(self.path), self.kinds)
        with self.assertRaises(ReloadRejected) as raised:
            yield service.reloader.reload()
        message = str(raised.exception)
        self.assertEqual(message, str(startup))
        self.assertIn(f"{self.path}:39: sources[3].line.plugs[1].Broken.max_watts: "
                      "expected a number from 0 to 1000000000 W, got 'lots' (str)", message)
        self.assertTrue(any(message in line and "Reload rejected" in line
                            for line in self.logs.lines), self.logs.text())
        self.assertIs(service.config, config)
        self.assertEqual(by_alias((yield ask_udp(service.udp_port, 5)))["Heater"], 42)
        self.assertEqual(len(self.server.connections), 1)
        # A later valid config is accepted again.
        self.write()
        summary = yield service.reloader.reload()
        self.assertEqual(summary.plugs_added, [])

    def _options(self, path):
        options = tap.Options()
        options.parseOptions(["-c", path])
        return options

    @defer.inlineCallbacks
    def test_identity_change_and_aggregates(self):
        """A new MAC makes a new plug; aggregate membership follows the config."""
        service = self.service
        service.set_power("Heater", 300)
        with open(self.path) as f:
            text = f.read()
        text = text.replace("mac: 53:75:31:F6:4C:05", "mac: 53:75:31:F6:4C:15")
        text = text.replace("elements: [TV, Soundbar]", "elements: [TV]")
        with open(self.path, "w") as f:
            f.write(text)
        old_heater = service.plugs["Heater"]
        yield service.reloader.reload()
        self.assertIsNot(service.plugs["Heater"], old_heater)
        # The new plug keeps the value set at run time (restore: true, the default).
        self.assertEqual(service.plugs["Heater"].watts, 300)
        self.assertEqual(service.plugs["Media"].watts, 90)
        self.assertTrue(service.plugs["Soundbar"].reported)
        replies = by_alias((yield ask_udp(service.udp_port, 6)))
        self.assertEqual(replies["Media"], 90)
        self.assertEqual(replies["Soundbar"], 25)

    @defer.inlineCallbacks
    def test_sighup_reloads_and_handler_is_removed_on_stop(self):
        """SIGHUP to this process reloads; stopping the service puts the old handler back."""
        reloader = self.service.reloader
        self.assertEqual(signal.getsignal(signal.SIGHUP), reloader._on_signal)
        self.write(heater_alias="Signalled")
        reloaded = self.logs.wait_for(r"^Reloaded ")
        os.kill(os.getpid(), signal.SIGHUP)
        yield reloaded
        self.assertEqual(self.service.plugs["Heater"].alias, "Signalled")
        self.assertTrue(any("SIGHUP received" in line for line in self.logs.lines))
        yield self.service.stopService()
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), reloader._on_signal)

    @defer.inlineCallbacks
    def test_target_and_other_top_level_keys_change_at_once(self):
        protocol = self.service.udp_protocol
        self.write(extra="target: 127.0.0.2\nallow_from: [127.0.0.0/8]\n")
        summary = yield self.service.reloader.reload()
        self.assertEqual(protocol.target, "127.0.0.2")
        self.assertEqual(summary.settings_changed, ["allow_from", "target"])
        import ipaddress
        self.assertEqual(self.service.responder.guard.allow,
                         [ipaddress.ip_network("127.0.0.0/8")])
        self.assertTrue(any("allow_from changed" in line and "applied" in line
                            for line in self.logs.lines), self.logs.text())
        self.write(extra="")
        yield self.service.reloader.reload()
        self.assertIsNone(protocol.target)


    @defer.inlineCallbacks
    def test_rate_limit_device_and_kasa_clients_apply_at_once(self):
        responder = self.service.responder
        self.assertIsNotNone(responder.guard.rate)
        self.write(extra="rate_limit: false\ndevice: {alias: Reloaded Strip}\n")
        summary = yield self.service.reloader.reload()
        self.assertEqual(summary.settings_changed, ["device", "rate_limit"])
        self.assertIsNone(responder.guard.rate)
        self.assertEqual(self.service.strip.alias, "Reloaded Strip")
        # The strip shows the plugs of the running config.
        self.assertEqual([child.alias for child in self.service.strip.source.children()],
                         [plug.alias for plug in self.service.plugs.reported])
        self.write(extra="kasa_clients: false\n")
        yield self.service.reloader.reload()
        self.assertIsNone(self.service.strip)

    @defer.inlineCallbacks
    def test_a_new_state_file_receives_the_running_counters(self):
        old_path = self.service.energy.path
        new_path = os.path.abspath(self.mktemp())
        self.service.set_power("Heater", 3600)
        self.write(state=new_path)
        summary = yield self.service.reloader.reload()
        self.assertEqual(summary.settings_changed, ["state_file"])
        self.assertEqual(self.service.energy.path, new_path)
        self.assertTrue(os.path.exists(old_path))     # saved once more on the way out
        self.assertTrue(os.path.exists(new_path))     # written at once
        import json
        with open(new_path) as f:
            self.assertIn("Heater", json.load(f)["plugs"])
        self.assertEqual(len([c for c in self.service if c.name == "energy"]), 1)
