"""Values set at run time survive a restart: kept in the state file, restored at start and at
a reload for plugs that are still mutable, each saved entry checked on its own."""

import json
import os
import socket
import urllib.request

from twisted.internet import task
from twisted.trial import unittest

from senselink.energy import EnergyService
from senselink.energy.counters import EnergyMeter
from senselink.energy.service import CHANGE_DELAY
from senselink.kasa import cipher, messages
from senselink.runvalues import MAX_LINES, RunValues, check_value
from tests.restart_support import CONFIG, TOKEN, MutableRestartCase
from tests.support import LOOPBACK

SET = 1_800_000_000.0        # 2027-01-15, a time the state file may name


class CheckTests(unittest.TestCase):
    def test_entries(self):
        good = {"watts": 900, "on": True, "set": SET}
        self.assertEqual(check_value(good), "")
        self.assertEqual(check_value({**good, "on": None}), "")
        for bad, words in (([], "not a mapping"),
                           ({**good, "watts": -1}, "watts is not a number from 0 to 1e+09"),
                           ({**good, "watts": True}, "watts is not a number"),
                           ({**good, "watts": int("9" * 400)}, "watts is not a number"),
                           ({**good, "on": "yes"}, "on is not true, false or null"),
                           ({**good, "set": 5}, "set is not a time in the years 2000 to 2100"),
                           ({"watts": 1, "on": None}, "set is not a time")):
            self.assertIn(words, check_value(bad), bad)

    def test_a_bad_entry_costs_only_its_plug(self):
        values = RunValues()
        bad = values.restore({"ev": {"watts": 7, "on": None, "set": SET},
                              "heater": {"watts": "lots", "on": None, "set": SET}})
        self.assertEqual(values.values, {"ev": (7.0, None, SET)})
        self.assertEqual(bad, ["The value set at run time of plug 'heater' in the state file is "
                               "unusable (watts is not a number from 0 to 1e+09); it starts "
                               "from its power"])
        self.assertEqual(len(RunValues().restore([])), 1)
        self.assertEqual(RunValues().restore(None), [])

    def test_many_bad_entries_are_counted_not_named(self):
        bad = RunValues().restore({f"p{i}": {} for i in range(1000)})
        self.assertEqual(len(bad), MAX_LINES + 1)
        self.assertEqual(bad[-1], f"{1000 - MAX_LINES} more values set at run time in the "
                                  f"state file are unusable")


class SaveSoonTests(unittest.TestCase):
    def test_changes_are_saved_once_per_delay(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        clock = task.Clock()
        clock.advance(SET)
        values = RunValues()
        service = EnergyService(EnergyMeter(clock), os.path.join(directory, "s.json"), clock,
                                save_interval=3600, sections=(values,))
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(service.saves, 1)
        for n in range(10):
            values.record("ev", n, None, clock.seconds())
            service.save_soon()
            clock.advance(0.1)
        self.assertEqual(service.saves, 1)
        clock.advance(CHANGE_DELAY)
        self.assertEqual(service.saves, 2)
        with open(os.path.join(directory, "s.json")) as f:
            self.assertEqual(json.load(f)["values"]["ev"]["watts"], 9.0)
        clock.advance(CHANGE_DELAY * 10)
        self.assertEqual(service.saves, 2)        # nothing changed: nothing written


class RestartTests(MutableRestartCase):

    def put(self, plug_id, body):
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.web}/api/plugs/{plug_id}",
                                         data=json.dumps(body).encode(), method="PUT",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.load(r)

    def first_sense_answer(self):
        """The power of each plug in the answer to one Sense request."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, self.kasa))
            power = {}
            for _ in range(2):
                reply = json.loads(cipher.decrypt(s.recv(4096)))
                power[reply["system"]["get_sysinfo"]["alias"]] = (
                    reply["emeter"]["get_realtime"]["power"])
            return power

    def test_a_value_set_through_the_web_api_survives_a_restart(self):
        daemon = self.start()
        self.assertEqual(self.put("ev", {"power": 900})["watts"], 900)
        self.assertEqual(self.put("heater", {"power": 500})["watts"], 500)
        self.assertEqual(self.put("ev", {"state": "off"})["on"], False)
        self.assertEqual(self.put("ev", {"power": 900.5, "state": "on"})["watts"], 900.5)
        self.stop(daemon)
        with open(self.state) as f:
            saved = json.load(f)["values"]
        self.assertEqual(set(saved), {"ev"})           # heater: restore: false
        self.assertEqual((saved["ev"]["watts"], saved["ev"]["on"]), (900.5, True))

        daemon = self.start()
        # The first Sense request gets the value set before the restart.
        self.assertEqual(self.first_sense_answer(), {"EV": 900.5, "Heater": 10.0})
        output = self.stop(daemon)
        self.assertRegex(output, r"Plug ev \(EV, 53:75:31:00:0F:01, mutable\): 900\.5 W "
                                 r"\(restored: set at run time on \d{4}-\d\d-\d\d "
                                 r"\d\d:\d\d:\d\d UTC\), reported")
        self.assertIn("Plug heater (Heater, 53:75:31:00:0F:02, mutable): 10.0 W, reported",
                      output)

    def test_a_plug_no_longer_mutable_starts_from_its_config(self):
        daemon = self.start()
        self.put("ev", {"power": 900})
        self.stop(daemon)
        with open(self.config, "w") as f:
            f.write(CONFIG.format(state=self.state, web=self.web, token=TOKEN)
                    .replace("- mutable:", "- static:")
                    .replace(", power: 10, restore: false", ", max_watts: 10"))
        daemon = self.start()
        self.assertEqual(self.first_sense_answer(), {"EV": 0.0, "Heater": 10.0})
        output = self.stop(daemon)
        self.assertNotIn("restored: set at run time", output)
        with open(self.state) as f:
            self.assertEqual(json.load(f)["values"], {})


RELOADED = """\
state_file: false
sources:
- mutable:
    plugs:
    - ev: {{alias: EV, mac: "{mac}", power: {power}}}
    - heater: {{alias: Heater, power: 10, restore: false}}
"""


class ReloadTests(unittest.TestCase):
    """At a reload, a plug rebuilt (a new MAC) or reset (a new power) keeps its run-time value
    while it restores; one with restore: false takes the config's."""

    def reload(self, service, text):
        path = os.path.join(os.path.abspath(self.mktemp()))
        with open(path, "w") as f:
            f.write(text)
        return service.reloader.reload(path)

    def test_rebuilt_and_reset_plugs_keep_their_value(self):
        from tests.support import start_service
        service = start_service(self, RELOADED.format(mac="53:75:31:00:0F:01", power=0))
        service.set_power("ev", 900)
        service.set_power("heater", 500)
        done = []
        self.reload(service, RELOADED.format(mac="53:75:31:00:0F:09", power=0)
                    .replace("power: 10", "power: 20")).addCallback(done.append)
        [summary] = done
        self.assertEqual(summary.plugs_added, ["ev"])
        self.assertEqual(summary.values_restored, ["ev"])
        self.assertEqual(service.plugs["ev"].watts, 900.0)
        self.assertEqual(service.plugs["heater"].watts, 20.0)
        done = []
        self.reload(service, RELOADED.format(mac="53:75:31:00:0F:09", power=5)
                    ).addCallback(done.append)
        self.assertEqual(done[0].values_restored, ["ev"])
        self.assertEqual(service.plugs["ev"].watts, 900.0)
        # restore: false from now on: the config's power, and the value is forgotten.
        done = []
        self.reload(service, RELOADED.format(mac="53:75:31:00:0F:09", power=7)
                    .replace("power: 7}", "power: 7, restore: false}")).addCallback(done.append)
        self.assertEqual(done[0].values_restored, [])
        self.assertEqual(service.plugs["ev"].watts, 7.0)
        self.assertEqual(service.values.values, {})
