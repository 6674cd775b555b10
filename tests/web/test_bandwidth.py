"""What an open page costs in bytes: an idle page (a house whose plugs draw steady
power, Sense polling every 2 s) receives under 10 KB a minute, with status events only
when something changed and a heartbeat comment; the page's files are gzipped, carry
ETags, and a reload in a real browser revalidates them (304) instead of downloading."""

import gzip
import os

from twisted.internet import defer, reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from senselink.service import makeService
from senselink.web.events import HEARTBEAT
from tests.support import config_from_text
from tests.webpage import BrowserTestCase, demo_config
from tests.websupport import WebTestCase


class StreamRequest:
    """What the event hub uses of a request: write, a producer, notifyFinish."""

    def __init__(self):
        self.written = []
        self.transport = None
        self.finished = defer.Deferred()

    def write(self, data):
        self.written.append(data)

    def registerProducer(self, producer, streaming):
        self.producer = producer

    def notifyFinish(self):
        return self.finished

    def received(self):
        return sum(len(data) for data in self.written)

    def names(self):
        return [line[7:] for data in self.written for line in data.decode().split("\n")
                if line.startswith("event: ")]


class IdleStreamTests(unittest.TestCase):

    def test_an_idle_page_receives_under_10_kb_a_minute(self):
        clock = task.Clock()
        clock.advance(1_800_000_000)
        config = config_from_text(demo_config(8080, 8081).replace("STATE", self.mktemp()))
        daemon = makeService(config, reactor=clock)
        hub = daemon.web.web.events
        request = StreamRequest()
        hub.add(request)
        self.addCleanup(hub.close)
        first = request.received()
        self.assertEqual(request.names(), ["snapshot"])
        for minute in range(3):
            before = request.received()
            for step in range(120):                       # a Sense poll every 2 s
                clock.advance(0.5)
                if step % 4 == 0:
                    daemon.polling.sense.seen("192.0.2.7")
            received = request.received() - before
            self.assertLess(received, 10 * 1024, (minute, received, request.names()[-20:]))
        names = request.names()
        self.assertEqual(names.count("snapshot"), 1)
        self.assertGreaterEqual(names.count("activity"), 3 * 5)    # Sense's counters move
        self.assertGreaterEqual(names.count("energy"), 3)         # energy every 30 s
        self.assertLessEqual(names.count("status"), 2)            # the banner went, once
        self.assertGreater(first, 1000)

    def test_a_stream_with_nothing_to_say_gets_heartbeats(self):
        clock = task.Clock()
        clock.advance(1_800_000_000)
        config = config_from_text(demo_config(8080, 8081).replace("STATE", self.mktemp()))
        daemon = makeService(config, reactor=clock)
        for plug in daemon.plugs:
            if plug.settable:
                daemon.set_power(plug.id, 0.0)
        hub = daemon.web.web.events
        request = StreamRequest()
        hub.add(request)
        self.addCleanup(hub.close)
        for _ in range(240):
            clock.advance(0.5)
        self.assertGreaterEqual(request.written.count(HEARTBEAT), 4)
        self.assertLess(request.received() - request.written[0].__len__(), 10 * 1024)


class CachingTests(WebTestCase):

    @defer.inlineCallbacks
    def get(self, path, **headers):
        """A GET through a plain Agent (treq would decode gzip)."""
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        response = yield agent.request(b"GET", (self.base + path).encode(), Headers({
            k.replace("_", "-").encode(): [v.encode()] for k, v in headers.items()}))
        content = yield readBody(response)
        return response, content

    @defer.inlineCallbacks
    def test_files_are_gzipped_and_revalidated(self):
        for path in ("/static/status.js", "/static/status.css", "/"):
            plain, content = yield self.get(path, Accept_Encoding="identity")
            self.assertEqual(plain.code, 200)
            self.assertIsNone(plain.headers.getRawHeaders(b"content-encoding"))
            self.assertEqual(plain.headers.getRawHeaders(b"cache-control"), [b"no-cache"])
            [tag] = plain.headers.getRawHeaders(b"etag")
            self.assertRegex(tag.decode(), r'^W/"[0-9a-f]{24}"$')
            zipped, data = yield self.get(path, Accept_Encoding="gzip, deflate")
            self.assertEqual(zipped.headers.getRawHeaders(b"content-encoding"), [b"gzip"])
            self.assertEqual(gzip.decompress(data), content)
            self.assertLess(len(data), len(content) / 2, path)
            self.assertIn(b"Accept-Encoding", zipped.headers.getRawHeaders(b"vary")[0])
            refused, data = yield self.get(path, Accept_Encoding="gzip;q=0")
            self.assertEqual(data, content)
            again, data = yield self.get(path, If_None_Match=tag.decode())
            self.assertEqual((again.code, data), (304, b""), path)
            other, data = yield self.get(path, If_None_Match='W/"0"')
            self.assertEqual((other.code, data), (200, content), path)

    @defer.inlineCallbacks
    def test_large_json_is_gzipped(self):
        response, data = yield self.get("/api/plugs/ev/history", Accept_Encoding="gzip")
        self.assertEqual(response.headers.getRawHeaders(b"content-encoding"), [b"gzip"])
        self.assertIn(b'"recent"', gzip.decompress(data))
        response, data = yield self.get("/api/status", Accept_Encoding="identity")
        self.assertIsNone(response.headers.getRawHeaders(b"content-encoding"))


class ReloadTests(BrowserTestCase):

    @defer.inlineCallbacks
    def test_a_reload_gets_304s_for_the_files(self):
        answers = []
        site = self.service.web.web.site
        log = site.log

        def record(request):
            answers.append((request.uri.decode(), request.code))
            log(request)
        site.log = record
        yield self.open()
        first = [a for a in answers if a[0].startswith("/static/")]
        self.assertEqual(sorted(code for _, code in first), [200] * len(first))
        self.assertEqual(len(first), 6)                      # 4 scripts, style, icon
        del answers[:]
        yield self.browser.call(lambda driver: driver.refresh())
        yield self.browser.until("return document.querySelectorAll('article.plug').length",
                                 "the page again")
        again = sorted(a for a in answers if a[0].startswith("/static/"))
        self.assertEqual(again, sorted((path, 304) for path, _ in first))
        yield self.browser.screenshot(os.path.join(self.folder, "reloaded.png"))
        yield self.assert_console_clean()
