from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink import guard
from senselink.config import ConfigError, load_text

BASE = "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n"


class AllowFromTests(unittest.TestCase):
    def test_default_is_the_lan(self):
        g = guard.Guard(Clock(), rate=False)
        for host in ("127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.20", "169.254.3.3",
                     "::1", "fd00::5", "fe80::1", "::ffff:192.168.1.2"):
            self.assertTrue(g.admit(host), host)
        for host in ("8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:1.1.1.1", "not-an-ip"):
            self.assertFalse(g.admit(host), host)
        self.assertEqual(g.dropped["not_allowed"], 5)

    def test_configured(self):
        config = load_text(BASE + "allow_from: [192.168.1.0/24, 127.0.0.1]\n", "c.yml")
        g = guard.Guard.from_config(config, Clock())
        self.assertTrue(g.admit("192.168.1.7"))
        self.assertTrue(g.admit("127.0.0.1"))
        self.assertFalse(g.admit("127.0.0.2"))
        self.assertFalse(g.admit("10.0.0.1"))

    def test_config_errors(self):
        with self.assertRaises(ConfigError) as e:
            load_text(BASE + "allow_from: [192.168.1.0/33]\n", "c.yml")
        self.assertIn("c.yml:5: allow_from: expected an address or CIDR", str(e.exception))
        with self.assertRaises(ConfigError) as e:
            load_text(BASE + "rate_limit: {requests_per_secnd: 3}\n", "c.yml")
        self.assertIn("unknown rate_limit key 'requests_per_secnd'", str(e.exception))
        with self.assertRaises(ConfigError):
            load_text(BASE + "rate_limit: {burst: -1}\n", "c.yml")


class RateLimitTests(unittest.TestCase):
    def make(self, text=""):
        self.clock = Clock()
        self.clock.advance(1000)
        return guard.Guard.from_config(load_text(BASE + text, "c.yml"), self.clock)

    def test_per_source_bucket(self):
        g = self.make("rate_limit: {requests_per_second: 2, burst: 4}\n")
        self.assertEqual([g.admit("192.168.1.9") for _ in range(6)], [True] * 4 + [False] * 2)
        self.assertTrue(g.admit("192.168.1.10"))          # another source has its own bucket
        self.clock.advance(1.0)                            # two tokens back
        self.assertEqual([g.admit("192.168.1.9") for _ in range(3)], [True, True, False])
        self.assertEqual(g.dropped["rate_limited"], 3)

    def test_sense_rate_is_comfortably_allowed(self):
        g = self.make()
        admitted = 0
        for _ in range(600):                               # 5 minutes at 2 requests/s
            admitted += g.admit("192.168.1.50", replies=20)
            self.clock.advance(0.5)
        self.assertEqual(admitted, 600)

    def test_loopback_exempt_by_default(self):
        g = self.make("rate_limit: {requests_per_second: 1, burst: 1}\n")
        self.assertTrue(all(g.admit("127.0.0.1") for _ in range(100)))
        self.assertFalse(all(g.admit("192.168.0.2") for _ in range(3)))

    def test_global_reply_cap(self):
        g = self.make("rate_limit: {replies_per_second: 50, requests_per_second: 100, burst: 100}\n")
        results = [g.admit(f"192.168.1.{i}", replies=20) for i in range(1, 5)]
        self.assertEqual(results, [True, True, False, False])
        self.assertEqual(g.dropped["reply_cap"], 2)

    def test_disabled(self):
        g = self.make("rate_limit: false\n")
        self.assertTrue(all(g.admit("192.168.0.2", replies=100) for _ in range(1000)))
        self.assertFalse(g.admit("8.8.8.8"))               # allow_from still applies

    def test_logs_once_a_minute_per_source(self):
        g = self.make("rate_limit: {requests_per_second: 1, burst: 1}\n")
        events = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for _ in range(100):
            g.admit("192.168.0.2")
        self.clock.advance(30)
        for _ in range(100):
            g.admit("192.168.0.2")
        self.clock.advance(31)
        for _ in range(100):
            g.admit("192.168.0.2")
        lines = [e for e in events if "Dropping requests from" in e.get("log_format", "")]
        self.assertEqual(len(lines), 2)

    def test_tracking_is_bounded(self):
        g = self.make("rate_limit: {requests_per_second: 1, burst: 1}\n")
        for i in range(guard.MAX_TRACKED * 2):
            g.admit(f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}")
        self.assertLessEqual(len(g.buckets), guard.MAX_TRACKED)


class ClockTests(unittest.TestCase):
    def test_a_clock_stepped_back_does_not_silence_sources(self):
        # reactor.seconds() is the wall clock: an NTP step back must not empty the buckets
        # (the source's and the global reply cap) for as long as the step.
        clock = Clock()
        clock.advance(10_000)
        g = guard.Guard(clock)
        self.assertTrue(g.admit("192.168.1.50", replies=20))
        clock.rightNow -= 600
        admitted = []
        for _ in range(20):                                # ten seconds of Sense polls
            admitted.append(g.admit("192.168.1.50", replies=20))
            clock.advance(0.5)
        self.assertEqual(admitted, [True] * 20)
        self.assertEqual(g.dropped, {})


class LogTableTests(unittest.TestCase):
    def test_a_full_table_logs_nothing_new_until_its_oldest_line_is_a_minute_old(self):
        clock = Clock()
        clock.advance(1000)
        g = guard.Guard(clock)
        hosts = [f"8.{i // 65536}.{(i // 256) % 256}.{i % 256}" for i in range(guard.MAX_TRACKED)]
        self.assertTrue(all(g.may_log(host, "not_allowed") for host in hosts))
        clock.advance(30)
        self.assertFalse(g.may_log("9.9.9.9", "not_allowed"))
        self.assertFalse(g.may_log(hosts[0], "not_allowed"))
        clock.advance(31)
        self.assertTrue(g.may_log("9.9.9.9", "not_allowed"))
        self.assertTrue(g.may_log(hosts[1], "not_allowed"))
        self.assertLessEqual(len(g._logged), guard.MAX_TRACKED)
