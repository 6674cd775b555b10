"""RecentRequests: a copy arriving another way within the window, on task.Clock."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.requestcopies import LIMIT, WINDOW, RecentRequests

SENDER = ("192.168.1.50", 40000)


class RecentRequestsTests(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.recent = RecentRequests(self.clock)

    def test_copy_by_another_way(self):
        self.assertEqual(WINDOW, 0.2)
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        self.assertTrue(self.recent.is_copy(b"req", SENDER, "wlan0"))
        self.clock.advance(0.199)
        self.assertTrue(self.recent.is_copy(b"req", SENDER, "wlan0"))
        self.clock.advance(0.002)
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "wlan0"))

    def test_the_same_way_again_is_a_new_request(self):
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        # ... and the window starts again from it
        self.clock.advance(0.15)
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        self.clock.advance(0.15)
        self.assertTrue(self.recent.is_copy(b"req", SENDER, "wlan0"))

    def test_other_bytes_or_senders_are_not_copies(self):
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        self.assertFalse(self.recent.is_copy(b"other", SENDER, "wlan0"))
        self.assertFalse(self.recent.is_copy(b"req", ("192.168.1.50", 40001), "wlan0"))
        self.assertFalse(self.recent.is_copy(b"req", ("192.168.1.51", 40000), "wlan0"))

    def test_bounded(self):
        for i in range(LIMIT * 4):
            self.assertFalse(self.recent.is_copy(b"%d" % i, SENDER, "eth0"))
            self.assertLessEqual(len(self.recent), LIMIT)
        self.assertGreaterEqual(len(self.recent), LIMIT // 2)
        # The oldest were forgotten: no longer recognised as copies.
        self.assertFalse(self.recent.is_copy(b"0", SENDER, "wlan0"))
        self.assertTrue(self.recent.is_copy(b"%d" % (LIMIT * 4 - 1), SENDER, "wlan0"))

    def test_expired_entries_are_forgotten_first(self):
        for i in range(LIMIT):
            self.recent.is_copy(b"%d" % i, SENDER, "eth0")
        self.clock.advance(WINDOW)
        self.recent.is_copy(b"new", SENDER, "eth0")
        self.assertEqual(len(self.recent), 1)
        self.assertTrue(self.recent.is_copy(b"new", SENDER, "wlan0"))

    def test_clock_stepping_back(self):
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "eth0"))
        self.clock.rightNow -= 3600
        self.assertFalse(self.recent.is_copy(b"req", SENDER, "wlan0"))
        self.assertEqual(len(self.recent), 1)
