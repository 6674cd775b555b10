"""The status page (C{/}) and its files: well-formed, escaped, self-contained, small."""

from html.parser import HTMLParser
from urllib.parse import urljoin

from twisted.internet import defer, task
from twisted.trial import unittest

from senselink.web.documents import history_document, snapshot
from senselink.web.events import event
from senselink.web.page import static_files, status_page
from senselink.service import makeService
from tests.support import config_from_text
from tests.webpage import demo_config
from tests.websupport import TOKEN, WebTestCase


class HTMLChecker(HTMLParser):
    """A strict-enough well-formedness check: doctype, balanced non-void elements."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []
        self.doctype = None
        self.text = []
        self.tags = []

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


class StatusPageTests(WebTestCase):

    @defer.inlineCallbacks
    def test_status_page(self):
        response, content = yield self.call("GET", "/")
        self.assertEqual(response.code, 200)
        headers = response.headers
        self.assertEqual(headers.getRawHeaders(b"content-type"), [b"text/html; charset=utf-8"])
        self.assertIn(b"default-src 'self'", headers.getRawHeaders(b"content-security-policy")[0])
        page = content.decode("utf-8")
        checker = HTMLChecker()
        checker.feed(page)
        checker.close()
        self.assertEqual(checker.errors, [])
        self.assertEqual(checker.stack, [])
        self.assertEqual(checker.doctype.lower(), "doctype html")
        text = " ".join(checker.text)
        for plug in self.service.plugs:                 # the table without scripts
            self.assertIn(plug.alias, text)
            self.assertIn(f"{plug.watts:,.1f} W", text)
        self.assertIn("Kids&#x27; &lt;Fridge&gt; &amp; Co", page)   # escaped in the markup
        metas = [attrs for tag, attrs in checker.tags if tag == "meta"]
        self.assertFalse(any("http-equiv" in m for m in metas))     # no reloads: pushed
        self.assertTrue(any(m.get("name") == "viewport" for m in metas))
        # Only the daemon's own files; links are relative, so the page works under a path
        # prefix (Home Assistant's ingress serves it at /api/hassio_ingress/<token>/).
        loaded = []
        for tag, attrs in checker.tags:
            self.assertNotIn(tag, ("img", "iframe"))
            for name in ("src", "href"):
                if name in attrs:
                    self.assertFalse(attrs[name].startswith("/") or ":" in attrs[name], attrs)
                    self.assertTrue(urljoin("http://ha/ingress/x/", attrs[name])
                                    .startswith("http://ha/ingress/x/"), attrs)
                    if tag in ("script", "link"):
                        loaded.append(attrs[name])
        self.assertEqual(sorted(loaded), ["static/charts.js", "static/icon.svg",
                                          "static/overview.js", "static/status.css",
                                          "static/status.js", "static/stream.js"])
        for path in loaded:
            response, content = yield self.call("GET", "/" + path)
            self.assertEqual(response.code, 200)
            self.assertGreater(len(content), 100)
            self.assertNotIn(b"http://", content.replace(b"http://www.w3.org/2000/svg", b""))
            self.assertNotIn(b"https://", content)
            self.assertNotIn(b'"/api', content)       # the script's requests are relative too
        self.assertNotIn(TOKEN, page)
        # Requests are not logged at INFO (page reloads and scrapes would flood the log).
        self.assertNotIn('"GET / HTTP/1.1"', self.log_text())

    @defer.inlineCallbacks
    def test_static_files_and_unknown_paths(self):
        response, content = yield self.call("GET", "/static/status.js")
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"text/javascript; charset=utf-8"])
        for path in ("/static/", "/static/nope.js", "/static/status.js/x", "/x/y",
                     "/metrics/x", "/api/status/x", "/api/events/x", "/api/plugs/ev/history/x"):
            code, body = yield self.json_call("GET", path)
            self.assertEqual(code, 404, path)


class PageWeightTests(unittest.TestCase):
    """20 plugs with 200-character aliases and a full day of history: at most 200 KB."""

    def test_page_with_full_history_weighs_at_most_200_kb(self):
        clock = task.Clock()
        clock.advance(1_800_000_000)
        state = self.mktemp()
        config = config_from_text(demo_config(8080, 8081).replace("STATE", state))
        daemon = makeService(config, reactor=clock)
        self.assertEqual(len(daemon.plugs), 20)
        plugs = [p for p in daemon.plugs if not getattr(p, "elements", None)]
        start = clock.seconds()
        # A day of a change a minute, then ten minutes of a change every half second.
        for minute in range(24 * 60 - 10):
            clock.advance(60)
            for i, plug in enumerate(plugs):
                plug.set_power(float((minute * 7 + i * 13) % 1000) + 0.25)
        for step in range(1200):
            clock.advance(0.5)
            for i, plug in enumerate(plugs):
                plug.set_power(float((step * 11 + i) % 3000) + 0.5)
        self.assertGreaterEqual(clock.seconds() - start, 86400)
        web = daemon.web.web
        now = clock.seconds()
        page = len(status_page(web))
        files = sum(len(data) for _, data in static_files().values())
        first = len(event("snapshot", snapshot(web, now)))
        total = page + files + first
        self.assertLessEqual(total, 200 * 1024, (page, files, first))
        history = history_document(web, daemon.plugs["ev"], now)
        self.assertEqual(len(history["minutes"]), 24 * 60)
        self.assertGreaterEqual(len(history["recent"]), 590)
        self.assertLessEqual(len(event("history", history)), 200 * 1024)
