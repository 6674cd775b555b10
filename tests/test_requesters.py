"""Who polls the daemon (senselink/polling.py): time, addresses, polls per minute, silence."""

from twisted.internet import task
from twisted.trial import unittest

from senselink.requesters import MAX_ADDRESSES, Polling, Requesters


class RequestersTests(unittest.TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(1000)

    def test_counts_time_and_addresses(self):
        r = Requesters(self.clock)
        self.assertEqual((r.requests, r.last, r.peers(), r.per_minute()), (0, None, [], 0.0))
        for i in range(10):
            r.seen("10.0.0.2")
            self.clock.advance(0.5)
        r.seen("10.0.0.3")
        self.assertEqual(r.requests, 11)
        self.assertEqual(r.last, 1005.0)
        self.assertEqual(r.peers(), [("10.0.0.3", 1005.0), ("10.0.0.2", 1004.5)])
        self.clock.advance(1)
        r.seen("10.0.0.2")
        self.assertEqual(r.peers(), [("10.0.0.2", 1006.0), ("10.0.0.3", 1005.0)])

    def test_addresses_are_bounded(self):
        r = Requesters(self.clock)
        for i in range(100):
            r.seen(f"10.0.1.{i}")
            self.clock.advance(1)
        peers = r.peers()
        self.assertEqual(len(peers), MAX_ADDRESSES)
        self.assertEqual(peers[0][0], "10.0.1.99")
        self.assertLessEqual(len(r.marks), r.marks.maxlen)

    def test_polls_per_minute(self):
        r = Requesters(self.clock)
        for _ in range(240):                 # 2 a second for two minutes
            r.seen("10.0.0.2")
            self.clock.advance(0.5)
        self.assertAlmostEqual(r.per_minute(), 120.0, delta=12)
        self.clock.advance(30)
        self.assertLess(r.per_minute(), 100.0)
        self.clock.advance(31)
        self.assertEqual(r.per_minute(), 0.0)

    def test_first_minute_counts_what_arrived(self):
        r = Requesters(self.clock)
        r.seen("10.0.0.2")
        self.assertEqual(r.per_minute(), 1.0)
        for _ in range(19):
            self.clock.advance(0.5)
            r.seen("10.0.0.2")
        self.assertEqual(r.per_minute(), 20.0)


class PollingTests(unittest.TestCase):

    def test_silence(self):
        clock = task.Clock()
        polling = Polling(clock, silence=60)
        clock.advance(59)
        self.assertIsNone(polling.sense_silent())
        clock.advance(2)
        self.assertEqual(polling.sense_silent(), 61)
        polling.kasa.seen("10.0.0.9")          # Kasa clients are not Sense
        self.assertEqual(polling.sense_silent(), 61)
        polling.sense.seen("10.0.0.2")
        self.assertIsNone(polling.sense_silent())
        clock.advance(60)
        self.assertEqual(polling.sense_silent(), 60)
        polling.restart()
        self.assertEqual(polling.sense_silent(), 60)   # the last request still counts
