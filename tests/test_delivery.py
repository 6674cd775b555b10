"""Per-plug delivery as Sense sees it: which of the last 60 Sense polls carried each plug."""

import json
import socket
import sys
import urllib.request

from twisted.internet import task
from twisted.trial import unittest

from senselink.delivery import NA_POLLS, WINDOW, Delivery
from senselink.kasa import cipher, messages
from senselink.plugs import Plug, PlugSet
from tests.processes import Case, DaemonProcess, limit_memory
from tests.support import LOOPBACK, free_port


def plug(plug_id, skip_rate=0):
    return Plug(plug_id, mac="53:75:31:00:00:01", device_id="0" * 40, kind="static",
                clock=task.Clock(), skip_rate=skip_rate)


class DeliveryTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)
        self.a, self.b = plug("a"), plug("b")
        self.plugs = PlugSet([self.a, self.b])
        self.delivery = Delivery(self.clock)
        self.delivery.watch(self.plugs)

    def test_every_poll_carries_every_plug(self):
        for _ in range(100):
            self.delivery.poll([self.a, self.b], 2)
        summary = self.delivery.summary("a", 1005.0)
        self.assertEqual(summary, {"last_answered": 1000.0, "age": 5.0, "carried": WINDOW,
                                   "polls": WINDOW, "missed": 0, "warning": None})

    def test_a_partial_send_carries_only_the_plugs_before_it(self):
        self.delivery.poll([self.a, self.b], 1)
        self.assertEqual(self.delivery.summary("a", 1000)["carried"], 1)
        self.assertEqual(self.delivery.summary("b", 1000)["carried"], 0)
        self.assertIsNone(self.delivery.summary("b", 1000)["last_answered"])

    def test_a_dropped_answer_is_a_poll_without_any_plug(self):
        self.delivery.poll([self.a, self.b], 2)
        for _ in range(NA_POLLS):
            self.delivery.poll([self.a, self.b], 0)
        summary = self.delivery.summary("a", 1000)
        self.assertEqual((summary["carried"], summary["polls"], summary["missed"]),
                         (1, NA_POLLS + 1, NA_POLLS))
        self.assertIsNone(summary["warning"])
        self.delivery.poll([self.a, self.b], 0)
        self.assertEqual(self.delivery.summary("a", 1000)["warning"],
                         f"Sense has gone {NA_POLLS + 1} polls without this plug; it shows "
                         f"N/A after about {NA_POLLS}")

    def test_the_ring_forgets_polls_older_than_the_window(self):
        self.delivery.poll([self.a], 1)
        for _ in range(WINDOW - 1):
            self.delivery.poll([self.b], 1)
        self.assertEqual(self.delivery.summary("a", 1000)["carried"], 1)
        self.delivery.poll([self.b], 1)
        self.assertEqual(self.delivery.summary("a", 1000)["carried"], 0)
        # A plug answered again after a long gap: only that poll counts (no huge shift).
        for _ in range(10 ** 5):
            self.delivery.poll([self.b], 1)
        self.delivery.poll([self.a], 1)
        self.assertEqual(self.delivery.get("a").ring, 1)
        self.assertEqual(self.delivery.summary("a", 1000)["carried"], 1)

    def test_a_new_plug_counts_from_its_first_poll(self):
        for _ in range(10):
            self.delivery.poll([self.a], 1)
        c = plug("c")
        self.delivery.watch(PlugSet([self.a, c]))
        self.assertIsNone(self.delivery.get("b"))
        self.delivery.poll([self.a, c], 2)
        summary = self.delivery.summary("c", 1000)
        self.assertEqual((summary["carried"], summary["polls"], summary["missed"]), (1, 1, 0))

    def test_skip_rate_in_the_reply_cache(self):
        """The cache names the plugs of its last answer, skip_rate's choice included."""
        from senselink.replies import SenseReplyCache
        starved = plug("s", skip_rate=9)
        plugs = PlugSet([self.a, starved])
        cache = SenseReplyCache(plugs)
        self.delivery.watch(plugs)
        for _ in range(WINDOW):
            replies = cache.sense_replies()
            self.delivery.poll(cache.answered, len(replies))
        self.assertEqual(self.delivery.summary("a", 0)["carried"], WINDOW)
        summary = self.delivery.summary("s", 0)
        self.assertEqual((summary["carried"], summary["missed"]), (WINDOW // 10, 9))
        self.assertIn("Sense has gone 9 polls without this plug", summary["warning"])


CONFIG = """\
state_file: false
web: {{listen: "tcp:{web}:interface=127.0.0.1"}}
sources:
- static:
    plugs:
    - steady: {{alias: Steady, max_watts: 5, mac: "53:75:31:00:0E:01"}}
    - starved: {{alias: Starved, max_watts: 7, mac: "53:75:31:00:0E:02", skip_rate: 9}}
"""


class StarvedPlugTests(Case):
    def test_a_plug_starved_by_skip_rate_shows_its_share_and_the_na_warning(self):
        """A user's view: the daemon runs, Sense polls 60 times over UDP, and /api/plugs and
        /metrics say the starved plug was in 6 of them and that Sense shows it N/A."""
        web, kasa = free_port(), free_port()
        path = self.mktemp_dir() + "/c.yml"
        with open(path, "w") as f:
            f.write(CONFIG.format(web=web))
        daemon = DaemonProcess(self, [sys.executable, "-m", "senselink", "-c", path, "-p",
                                      str(kasa), "--interface", LOOPBACK],
                               preexec_fn=limit_memory())
        daemon.wait_for("Plug starved")
        seen = {"steady": 0, "starved": 0}
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for poll in range(WINDOW):
                s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, kasa))
                for _ in range(2 if poll % 10 == 0 else 1):
                    reply = json.loads(cipher.decrypt(s.recv(4096)))
                    alias = reply["system"]["get_sysinfo"]["alias"]
                    seen[alias.lower()] += 1
        self.assertEqual(seen, {"steady": WINDOW, "starved": WINDOW // 10})
        with urllib.request.urlopen(f"http://{LOOPBACK}:{web}/api/plugs", timeout=10) as r:
            plugs = {p["id"]: p for p in json.load(r)["plugs"]}
        starved, steady = plugs["starved"]["sense"], plugs["steady"]["sense"]
        self.assertEqual((steady["carried"], steady["polls"], steady["missed"]),
                         (WINDOW, WINDOW, 0))
        self.assertIsNone(steady["warning"])
        self.assertEqual((starved["carried"], starved["polls"], starved["missed"]),
                         (WINDOW // 10, WINDOW, 9))
        self.assertEqual(starved["warning"], "Sense has gone 9 polls without this plug; it "
                                             "shows N/A after about 5")
        self.assertIsNotNone(starved["last_answered"])
        with urllib.request.urlopen(f"http://{LOOPBACK}:{web}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        self.assertIn('senselink_plug_sense_polls_carried{plug="starved"} 6.0', metrics)
        self.assertIn('senselink_plug_sense_polls{plug="starved"} 60.0', metrics)
        self.assertIn('senselink_plug_sense_polls_missed{plug="starved"} 9.0', metrics)
        self.assertIn('senselink_plug_sense_polls_carried{plug="steady"} 60.0', metrics)
        self.assertNotIn("Traceback", daemon.stop())
