"""The http source against misbehaving servers on 127.0.0.1 (issue 27): each poll fails
with one clear complaint, the log stays bounded, memory stays bounded, nothing leaks."""

import tracemalloc
import zlib

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink import config
from senselink.plugbuilder import build_plugs
from senselink.sources.http import HttpPollService
from senselink.sources.httphead import MAX_HEADERS, MAX_INTERIM, MAX_LINE
from senselink.sources.httpfetch import MAX_REDIRECTS
from tests.rawhttp import reply, serve_script
from tests.support import wait_until

POLLS = 3
MAX_LOG_EVENTS = 10      # log events of all namespaces during POLLS failing polls
MAX_LOG_BYTES = 4096     # their formatted text


class UpstreamTestCase(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def serve(self, script):
        self.port, self.server = serve_script(self, script)
        return f"http://127.0.0.1:{self.port}"

    def make(self, url, plugs="    - meter:\n        power_keypath: power\n", extra=""):
        text = f"sources:\n- http:\n    url: {url}\n{extra}    plugs:\n{plugs}"
        self.config = config.load_text(text, "test.yml")
        self.plugs = build_plugs(self.config, self.clock)
        service = HttpPollService(self.config.sources[0], self.plugs, self.clock, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    @defer.inlineCallbacks
    def polls(self, service, n=POLLS):
        """C{n} polls, each finished (on the real reactor) within 5 s."""
        for i in range(n):
            if i:
                self.clock.advance(service.interval)
            yield wait_until(lambda: service.current_poll is None, timeout=5.0)

    def log_text(self):
        return "\n".join(formatEvent(e) or "" for e in self.events)

    def warnings(self):
        return [formatEvent(e) for e in self.events
                if e["log_level"].name in ("warn", "error", "critical")]

    def assert_one_complaint(self, service, words):
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(words, warnings[0])
        self.assertIn(words, service.last_error)
        self.assertFalse(service.connected)
        self.assertEqual(service.failures, POLLS)
        self.assertLessEqual(len(self.events), MAX_LOG_EVENTS)
        self.assertLessEqual(len(self.log_text()), MAX_LOG_BYTES)


def forever(chunk, limit=100_000):
    """C{chunk} again and again (bounded, so that a test always ends)."""
    for _ in range(limit):
        yield chunk


class FloodTests(UpstreamTestCase):

    @defer.inlineCallbacks
    def test_interim_responses_forever(self):
        """Item 1: 100 Continue forever (up to 100,000 x 4.3 KB): the poll fails at once
        after MAX_INTERIM of them, no line per 1xx, and the server could send little."""
        url = self.serve(lambda target, headers: forever(b"HTTP/1.1 100 Continue\r\n\r\n" * 170))
        service = self.make(url)
        yield self.polls(service)
        self.assert_one_complaint(service, f"more than {MAX_INTERIM} interim (1xx) responses")
        self.assertNotIn("Ignoring unexpected", self.log_text())
        # What the client let through: three polls, each stopped within a few socket
        # buffers of the flood (425 MB were offered per poll).
        self.assertLess(self.server.sent, 3 * 16 * 1024 * 1024)

    @defer.inlineCallbacks
    def test_hundred_thousand_headers(self):
        """Item 8: 100,000 headers (10 MB) per reply are refused after MAX_HEADERS."""
        def script(target, headers):
            yield b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
            for i in range(1000):
                yield b"".join(b"X-Filler-%06d: %s\r\n" % (i * 100 + j, b"v" * 80)
                               for j in range(100))
            yield b"\r\n{}"
        service = self.make(self.serve(script))
        yield self.polls(service)
        self.assert_one_complaint(service, f"the reply has more than {MAX_HEADERS} headers")
        self.assertLess(self.server.sent, 3 * 10 * 1024 * 1024)

    @defer.inlineCallbacks
    def test_long_header_line_is_named(self):
        """Item 17: a 100 KB header line is said to be one, not 'closed cleanly'."""
        service = self.make(self.serve(lambda target, headers: [reply(
            b'{"power": 1}', headers=[b"X-Long: " + b"a" * 100_000])]))
        yield self.polls(service)
        self.assert_one_complaint(service, f"a reply header line is longer than {MAX_LINE} "
                                           f"bytes")
        self.assertNotIn("closed cleanly", self.log_text())

    @defer.inlineCallbacks
    def test_gzip_bomb_is_inflated_piece_by_piece(self):
        """Item 8: 100 MB of zeros gzipped (about 100 KB) is cut at 1 MiB, and the poll
        allocates at most 16 MB on the way (Twisted's decoder inflated each 64 KB read whole)."""
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(1024 * 1024)
        bomb = b"".join(packer.compress(zeros) for _ in range(100)) + packer.flush()
        self.assertLess(len(bomb), 200 * 1024)
        service = self.make(self.serve(lambda target, headers: [reply(
            bomb, headers=[b"Content-Encoding: gzip"])]))
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        yield self.polls(service)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.assertLess(peak, 16 * 1024 * 1024)
        self.assert_one_complaint(service, "response body larger than 1048576 bytes")

    @defer.inlineCallbacks
    def test_gzip_body_is_read(self):
        body = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        packed = body.compress(b'{"power": 12.5}') + body.flush()
        service = self.make(self.serve(lambda target, headers: [reply(
            packed, headers=[b"Content-Encoding: gzip"])]))
        yield self.polls(service, 1)
        self.assertEqual(self.plugs["meter"].watts, 12.5)
        self.assertEqual(self.server.requests[0][1][b"accept-encoding"], [b"gzip"])

    @defer.inlineCallbacks
    def test_cookies_are_never_sent_back(self):
        """Item 6: 50 new cookies per reply; no poll sends a Cookie header."""
        def script(target, headers):
            n = len(self.server.requests)
            cookies = [b"Set-Cookie: c%d_%d=%s; Path=/" % (n, i, b"x" * 40) for i in range(50)]
            return [reply(b'{"power": 3}', headers=cookies)]
        service = self.make(self.serve(script))
        yield self.polls(service, 5)
        self.assertEqual(len(self.server.requests), 5)
        for target, headers in self.server.requests:
            self.assertNotIn(b"cookie", headers)
        self.assertEqual(self.warnings(), [])
        self.assertEqual(self.plugs["meter"].watts, 3.0)

    @defer.inlineCallbacks
    def test_deeply_nested_json(self):
        """Item 10: JSON nested 100,000 deep is one complaint and the status says so."""
        deep = b"[" * 100_000 + b"]" * 100_000
        service = self.make(self.serve(lambda target, headers: [reply(deep)]))
        yield self.polls(service)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("nested deeper than 64 levels", warnings[0])
        self.assertIn("nested deeper than 64 levels", service.last_error)
        self.assertNotIn("Traceback", self.log_text())
        self.assertLessEqual(len(self.events), MAX_LOG_EVENTS)


class RedirectTests(UpstreamTestCase):

    def setUp(self):
        super().setUp()
        self.other_port, self.other = serve_script(
            self, lambda target, headers: [reply(b'{"power": 99}')])
        # Another host: "localhost" is not the configured "127.0.0.1".
        self.elsewhere = f"http://localhost:{self.other_port}/elsewhere?token=t0p"
        self.secrets = ("s3cret-header", "pw-in-url", "key=query-secret", "t0p")

    def redirecting(self, code=302):
        def script(target, headers):
            if target.startswith(b"/moved"):
                return [reply(b'{"power": 7}')]
            if target.startswith(b"/here"):
                return [reply(b"", code=code, phrase=b"Found",
                              headers=[b"Location: /moved?key=query-secret"])]
            return [reply(b"", code=code, phrase=b"Found",
                          headers=[b"Location: " + self.elsewhere.encode()])]
        return script

    def make_redirected(self, path="/meter", extra=""):
        url = self.serve(self.redirecting()).replace("http://", "http://u:pw-in-url@")
        return self.make(f"{url}{path}?key=query-secret",
                         extra="    headers: {X-Api-Key: s3cret-header}\n" + extra)

    def assert_no_secrets(self, service):
        shown = self.log_text() + (service.last_error or "")
        for secret in self.secrets:
            self.assertNotIn(secret, shown)

    @defer.inlineCallbacks
    def test_redirect_to_another_host_is_refused_by_default(self):
        """Item 15: nothing reaches the other host; one line says why."""
        service = self.make_redirected()
        yield self.polls(service)
        self.assert_one_complaint(service, f"HTTP 302 redirect to "
                                           f"http://localhost:{self.other_port}/elsewhere refused")
        self.assertIn("follow_redirects", service.last_error)
        self.assertEqual(self.other.requests, [])
        self.assert_no_secrets(service)

    @defer.inlineCallbacks
    def test_any_follows_but_headers_stay_home(self):
        """Item 15: with follow_redirects: any, the other host gets no configured header
        and no credentials."""
        service = self.make_redirected(extra="    follow_redirects: any\n")
        yield self.polls(service, 1)
        self.assertEqual(self.plugs["meter"].watts, 99.0)
        first = self.server.requests[0][1]
        self.assertEqual(first[b"x-api-key"], [b"s3cret-header"])
        self.assertIn(b"authorization", first)
        target, headers = self.other.requests[0]
        self.assertEqual(target, b"/elsewhere?token=t0p")
        self.assertNotIn(b"x-api-key", headers)
        self.assertNotIn(b"authorization", headers)
        self.assertNotIn(b"cookie", headers)

    @defer.inlineCallbacks
    def test_same_host_redirect_is_followed_with_its_headers(self):
        service = self.make_redirected(path="/here")
        yield self.polls(service, 1)
        self.assertEqual(self.plugs["meter"].watts, 7.0)
        target, headers = self.server.requests[1]
        self.assertEqual(target, b"/moved?key=query-secret")
        self.assertEqual(headers[b"x-api-key"], [b"s3cret-header"])
        self.assertEqual(self.warnings(), [])

    @defer.inlineCallbacks
    def test_none_follows_nothing(self):
        service = self.make_redirected(path="/here", extra="    follow_redirects: none\n")
        yield self.polls(service)
        self.assert_one_complaint(service, "not followed (follow_redirects: none)")
        self.assertEqual(len(self.server.requests), POLLS)

    @defer.inlineCallbacks
    def test_redirect_loop_shows_no_query(self):
        """Item 16: a loop ends after MAX_REDIRECTS with no query string in the log or status."""
        def script(target, headers):
            n = len(self.server.requests)
            return [reply(b"", code=302, phrase=b"Found",
                          headers=[b"Location: /loop?key=query-secret&n=%d" % n])]
        url = self.serve(script)
        service = self.make(f"{url}/meter?key=query-secret")
        yield self.polls(service)
        self.assert_one_complaint(service, f"more than {MAX_REDIRECTS} redirects "
                                           f"(the last to http://127.0.0.1:{self.port}/loop)")
        self.assertEqual(len(self.server.requests), POLLS * (MAX_REDIRECTS + 1))
        self.assert_no_secrets(service)

    def test_follow_redirects_is_checked(self):
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text("sources:\n- http:\n    url: http://127.0.0.1/\n"
                             "    follow_redirects: always\n    plugs:\n    - a: {}\n", "c.yml")
        self.assertIn("c.yml:4: sources[0].http.follow_redirects: expected one of same_host, "
                      "any, none, got 'always'", str(caught.exception))
