"""The publisher in a real twistd process: the broker's last will when it is killed,
online again after a restart, and kWh that go on from where they were."""

import os
import signal

from twisted.internet import defer

from tests.mosquitto import require_mosquitto, started_broker
from tests.mqttclient import raw_client
from tests.processes import Case, DaemonProcess, twistd
from tests.support import LOOPBACK, free_port

CONFIG = """\
state_file: {state}
state_save_interval: 1
sources:
- mutable:
    plugs:
    - heater: {{power: 36000, mac: "53:75:31:F6:4C:05"}}
publish:
  host: 127.0.0.1
  port: {port}
  energy_interval: 1
"""
STATUS, ENERGY = "senselink/status", "senselink/heater/energy"


class DaemonProcessTests(Case):
    timeout = 120

    @defer.inlineCallbacks
    def test_will_on_sigkill_then_online_and_kwh_go_on(self):
        require_mosquitto()
        broker = yield started_broker(self)
        watcher = yield raw_client(self, broker.port, "watch")
        yield watcher.subscribe("senselink/#")
        folder = self.mktemp_dir()
        path = os.path.join(folder, "senselink.yml")
        with open(path, "w") as f:
            f.write(CONFIG.format(state=os.path.join(folder, "state.json"), port=broker.port))
        args = [twistd(), "-n", "--pidfile=", "senselink", "-c", path, "-p", str(free_port()),
                "--interface", LOOPBACK]

        first = DaemonProcess(self, args)
        yield watcher.wait_for(lambda c: c.history(STATUS)[-1:] == [b"online"], "online")
        yield watcher.wait_for(lambda c: len(c.history(ENERGY)) >= 3 and float(
            c.history(ENERGY)[-1]) > 0, "kWh counted and saved")
        os.kill(first.process.pid, signal.SIGKILL)       # no DISCONNECT, no last save
        first.process.wait(timeout=20)
        yield watcher.wait_for(lambda c: c.history(STATUS)[-1] == b"offline", "the will")
        published = [float(kwh) for kwh in watcher.history(ENERGY)]
        self.assertEqual(published, sorted(published))

        seen = len(watcher.history(ENERGY))
        second = DaemonProcess(self, args)
        yield watcher.wait_for(lambda c: c.history(STATUS)[-1] == b"online", "online again")
        yield watcher.wait_for(lambda c: len(c.history(ENERGY)) >= seen + 2, "kWh again")
        after = [float(kwh) for kwh in watcher.history(ENERGY)[seen:]]
        self.assertGreaterEqual(min(after), published[-1])   # resumed from the state file
        output = second.stop()                                # SIGTERM: a clean stop
        yield watcher.wait_for(lambda c: c.history(STATUS)[-1] == b"offline", "offline at stop")
        self.assertIn("MQTT publisher connected to broker", output)
        self.assertNotIn("Traceback", output)
