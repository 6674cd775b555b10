"""Sense never sees a ghost plug by accident: the MACs Sense was answered with are kept, and a
plug that would become a new device in Sense by accident is a warning naming both MACs."""

import json
import os
import signal
import socket
import sys

from twisted.internet import task
from twisted.trial import unittest

from senselink.delivery import Delivery
from senselink.identities import (MAX_IDENTITIES, Identities, Identity, Reported,
                                  check_identity, ghost_warnings, identity_table)
from senselink.kasa import messages
from senselink.plugs import Plug, PlugSet, derive_mac
from tests.processes import Case
from tests.support import LOOPBACK, free_port

T = 1_800_000_000.0          # 2027-01-15 08:00 UTC
OLD, NEW, OTHER = "53:75:31:00:00:01", "53:75:31:00:00:02", "53:75:31:00:00:03"


def known(*identities):
    return {i.mac: i for i in identities}


class GhostTests(unittest.TestCase):
    """ghost_warnings: one table of cases."""

    dryer = Identity(OLD, "dryer", "Dryer", 0, T, T + 60)

    def test_cases(self):
        cases = [
            # (what Sense knew, the config's reported plugs, plugs warned about)
            ((self.dryer,), [Reported("dryer", "Dryer", OLD, 0)], []),
            ((self.dryer,), [Reported("dryer", "Dryer", NEW, 0)], ["dryer"]),
            ((self.dryer,), [Reported("clothes", "Dryer", NEW, 3)], ["clothes"]),
            ((self.dryer,), [Reported("clothes", "Tumbler", NEW, 0)], ["clothes"]),
            ((self.dryer,), [Reported("clothes", "Tumbler", NEW, 1)], []),
            # The old identity kept with mac: nothing new for Sense.
            ((self.dryer,), [Reported("clothes", "Dryer", OLD, 0)], []),
            # The old plug is still there: a new plug beside it is no accident.
            ((self.dryer,), [Reported("dryer", "Dryer", OLD, 0),
                             Reported("clothes", "Dryer", NEW, 1)], []),
            # Its old MAC went to another plug: not a ghost of this one.
            ((self.dryer,), [Reported("dryer", "Dryer", NEW, 0),
                             Reported("x", "X", OLD, 1)], []),
            # One vanished plug matches one new plug only.
            ((self.dryer,), [Reported("a", "Dryer", NEW, 0), Reported("b", "Dryer", OTHER, 1)],
             ["a"]),
            ((), [Reported("dryer", "Dryer", NEW, 0)], []),
        ]
        for knew, reported, warned in cases:
            words = ghost_warnings(known(*knew), reported)
            self.assertEqual(len(words), len(warned), (knew, reported, words))
            for plug_id, text in zip(warned, words):
                self.assertTrue(text.startswith(f"Plug '{plug_id}' "), text)

    def test_the_words(self):
        [words] = ghost_warnings(known(self.dryer), [Reported("clothes", "Dryer", NEW, 0)])
        self.assertEqual(words, f"Plug 'clothes' is new, and its alias matches plug 'dryer', "
                                f"gone, which was reported to Sense with MAC {OLD} (last "
                                f"answered 2027-01-15 08:01 UTC) and is now reported with MAC "
                                f"{NEW}: Sense will show a new device 'Dryer'; the old one "
                                f"stays in the Sense app. To keep the old identity, set mac: "
                                f"{OLD} on plug 'clothes'")


class EntryTests(unittest.TestCase):
    good = {"plug": "dryer", "alias": "Dryer", "position": 0, "first": T, "last": T}

    def test_entries(self):
        self.assertEqual(check_identity(OLD, self.good), "")
        for mac, entry, words in (
                ("53:75:31:00:00:0a", self.good, "not a MAC address"),
                (OLD, [], "not a mapping"),
                (OLD, {**self.good, "plug": ""}, "plug is not a name"),
                (OLD, {**self.good, "alias": "x" * 129}, "alias is not a name"),
                (OLD, {**self.good, "position": -1}, "position is not a whole number"),
                (OLD, {**self.good, "position": True}, "position is not a whole number"),
                (OLD, {**self.good, "last": 10}, "first or last is not a time"),
                (OLD, {**self.good, "first": T + 1}, "first is after last")):
            self.assertIn(words, check_identity(mac, entry), (mac, entry))

    def test_a_bad_entry_costs_only_itself_and_the_table_is_bounded(self):
        identities = Identities()
        bad = identities.restore({OLD: self.good, NEW: {**self.good, "position": "x"}})
        self.assertEqual(list(identities.known), [OLD])
        self.assertEqual(len(bad), 1)
        self.assertIn(f"Identity '{NEW}' in the state file is unusable", bad[0])
        many = {f"53:75:31:00:{n // 256:02X}:{n % 256:02X}": self.good for n in range(1500)}
        identities = Identities()
        bad = identities.restore(many)
        self.assertEqual(len(identities.known), MAX_IDENTITIES)
        self.assertEqual(bad[-1], "480 more identities in the state file are unusable")

    def test_what_sense_was_answered_with_is_noted(self):
        clock = task.Clock()
        clock.advance(T)
        plug = Plug("dryer", alias="Dryer", mac=OLD, device_id="0" * 40, kind="static",
                    clock=clock)
        delivery = Delivery(clock)
        identities = Identities(delivery)
        plugs = PlugSet([plug])
        delivery.watch(plugs)
        identities.watch(plugs)
        self.assertEqual(identities.snapshot(), {})        # never answered: not known
        delivery.poll([plug], 1)
        clock.advance(60)
        delivery.poll([plug], 1)
        self.assertEqual(identities.snapshot(), {OLD: {"plug": "dryer", "alias": "Dryer",
                                                       "position": 0, "first": T,
                                                       "last": T + 60}})
        table = identity_table(identities.known, [Reported("dryer", "Dryer", OLD, 0)])
        self.assertIn(f"{OLD}  dryer  Dryer  2027-01-15 08:00 UTC  2027-01-15 08:01 UTC  dryer",
                      table)


CONFIG = """\
state_file: {state}
sources:
- static:
    plugs:
    - lamp: {{alias: Lamp, max_watts: 5}}
    - {dryer}: {{alias: Dryer, max_watts: 3000}}
"""


class RenameTests(Case):
    """What a user does: rename a plug id, SIGHUP, read the warning; list the identities."""

    def setUp(self):
        self.dir = self.mktemp_dir()
        self.state = os.path.join(self.dir, "state.json")
        self.config = os.path.join(self.dir, "c.yml")
        self.kasa = free_port()

    def write(self, dryer):
        with open(self.config, "w") as f:
            f.write(CONFIG.format(state=self.state, dryer=dryer))

    def start(self):
        return self.start_senselink(self.config, self.kasa, "Plug lamp")

    def poll(self):
        """One Sense poll, answered with both plugs."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, self.kasa))
            s.recv(4096)
            s.recv(4096)

    def command(self, name):
        return self.run_quick([sys.executable, "-m", "senselink", name, "-c", self.config])

    def test_a_renamed_plug_is_a_warning_naming_both_macs(self):
        old, new, third = derive_mac("dryer"), derive_mac("clothes_dryer"), derive_mac("tumbler")
        self.write("dryer")
        daemon = self.start()
        self.poll()
        self.write("clothes_dryer")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("Reloaded ")
        self.assertIn(f"Reload: Plug 'clothes_dryer' is new, and its alias matches plug "
                      f"'dryer', gone, which was reported to Sense with MAC {old} (last "
                      f"answered ", daemon.seen)
        self.assertIn(f"and is now reported with MAC {new}: Sense will show a new device "
                      f"'Dryer'; the old one stays in the Sense app. To keep the old identity, "
                      f"set mac: {old} on plug 'clothes_dryer'", daemon.seen)
        self.assertEqual(daemon.seen.count("Sense will show a new device"), 1)
        self.poll()                          # Sense now knows the new one too
        self.stop(daemon)

        with open(self.state) as f:
            saved = json.load(f)["identities"]
        self.assertEqual({saved[old]["plug"], saved[new]["plug"]}, {"dryer", "clothes_dryer"})
        listed = self.command("identities")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        rows = {line.split()[0]: line.split() for line in listed.stdout.splitlines()[1:]
                if line.startswith("53:")}
        self.assertEqual(rows[old][1:3], ["dryer", "Dryer"])
        self.assertEqual(rows[old][-1], "-")                # no plug reports it now
        self.assertEqual(rows[new][1:3], ["clothes_dryer", "Dryer"])
        self.assertEqual(rows[new][-1], "clothes_dryer")
        self.assertIn(derive_mac("lamp"), rows)
        self.assertIn("3 MACs answered to Sense", listed.stdout)

        # Renamed again while stopped: check says so, and so does the next start.
        self.write("tumbler")
        checked = self.command("check")
        self.assertEqual(checked.returncode, 0, checked.stderr)
        self.assertIn(f"warning: Plug 'tumbler' is new, and its alias matches plug "
                      f"'clothes_dryer', gone, which was reported to Sense with MAC {new}",
                      checked.stderr)
        self.assertIn(f"now reported with MAC {third}", checked.stderr)
        daemon = self.start()
        output = self.stop(daemon)
        self.assertIn(f"set mac: {new} on plug 'tumbler'", output)

    def test_a_changed_mac_is_a_warning(self):
        self.write("dryer")
        daemon = self.start()
        self.poll()
        with open(self.config) as f:
            text = f.read()
        with open(self.config, "w") as f:
            f.write(text.replace("max_watts: 3000", 'max_watts: 3000, mac: "53:75:31:00:AA:01"'))
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("Reloaded ")
        self.assertIn(f"Reload: Plug 'dryer' was reported to Sense with MAC "
                      f"{derive_mac('dryer')} (last answered ", daemon.seen)
        self.assertIn("and is now reported with MAC 53:75:31:00:AA:01", daemon.seen)
        self.stop(daemon)
