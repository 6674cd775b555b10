"""The HTML status page (C{/}): well-formed, escaped, self-contained, live values."""

from html.parser import HTMLParser
from urllib.parse import urljoin

from twisted.internet import defer

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
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"text/html; charset=utf-8"])
        page = content.decode("utf-8")
        checker = HTMLChecker()
        checker.feed(page)
        checker.close()
        self.assertEqual(checker.errors, [])
        self.assertEqual(checker.stack, [])
        self.assertEqual(checker.doctype.lower(), "doctype html")
        text = " ".join(checker.text)
        for plug in self.service.plugs:
            self.assertIn(plug.alias, text)
            self.assertIn(f"{plug.watts:,.1f} W", text)
        self.assertIn("Kids&#x27; &lt;Fridge&gt; &amp; Co", page)   # escaped in the markup
        self.assertIn("connected", text)
        self.assertIn(self.service.sources[0].label, text)
        metas = [attrs for tag, attrs in checker.tags if tag == "meta"]
        self.assertIn({"http-equiv": "refresh", "content": "10"}, metas)
        self.assertTrue(any(m.get("name") == "viewport" for m in metas))
        # No external assets; links are relative, so the page works under a path prefix
        # (Home Assistant's ingress serves it at /api/hassio_ingress/<token>/).
        for tag, attrs in checker.tags:
            self.assertNotIn(tag, ("script", "img", "link"))
            for name in ("src", "href"):
                if name in attrs:
                    self.assertFalse(attrs[name].startswith("/") or ":" in attrs[name], attrs)
                    self.assertTrue(urljoin("http://ha/ingress/x/", attrs[name])
                                    .startswith("http://ha/ingress/x/"), attrs)
        self.assertNotIn(TOKEN, page)
        # Requests are not logged at INFO (page reloads and scrapes would flood the log).
        self.assertNotIn('"GET / HTTP/1.1"', self.log_text())
