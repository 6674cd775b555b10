"""The web interface through treq against a real listener on 127.0.0.1, port 0."""

import json
from html.parser import HTMLParser

import treq
from prometheus_client.parser import text_string_to_metric_families

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from senselink import config
from senselink.kasa import cipher
from senselink.service import makeService
from senselink.webconfig import WebOptions
from tests.support import wait_until
from tests.httpserver import serve
from tests.test_http_source import Meter

TOKEN = "t0ken-that-must-never-show"

CONFIG = """\
web:
  listen: tcp:0:interface=127.0.0.1
  token: {token}
sources:
- static:
    plugs:
    - fridge:
        alias: "Kids' <Fridge> & Co"
        max_watts: 120.5
        mac: 53:75:31:00:00:01
- mutable:
    plugs:
    - ev:
        alias: EV Charger
        power: 1500
        max_watts: 7200
        off_usage: 2
        mac: 53:75:31:00:00:02
    - lamp:
        alias: Lamp
        power: 10
        mac: 53:75:31:00:00:03
- http:
    url: http://127.0.0.1:{meter_port}/meter
    plugs:
    - meter:
        alias: Heat pump
        power_keypath: power
        mac: 53:75:31:00:00:04
- aggregate:
    plugs:
    - lights:
        alias: All lights
        elements: [lamp]
        mac: 53:75:31:00:00:05
"""


@implementer(IBodyProducer)
class ChunkedBody:
    """A request body of unknown length: sent with chunked transfer encoding."""

    length = UNKNOWN_LENGTH

    def __init__(self, chunks):
        self.chunks = chunks

    def startProducing(self, consumer):
        for chunk in self.chunks:
            consumer.write(chunk)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class WebTestCase(unittest.TestCase):

    token = TOKEN

    @defer.inlineCallbacks
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 2345.5}')
        meter_port = serve(self, self.meter)
        token_line = self.token if self.token else "null"
        self.config = config.load_text(CONFIG.format(token=token_line, meter_port=meter_port),
                                       "web.yml")
        self.service = makeService(self.config, port=0, interface="127.0.0.1")
        self.service.startService()
        self.addCleanup(self.service.stopService)
        [poller] = self.service.sources
        yield wait_until(lambda: poller.last_update is not None)
        self.base = f"http://127.0.0.1:{self.service.web.endpoint.port}"
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    @defer.inlineCallbacks
    def call(self, method, path, body=None, token=None, raw=None):
        headers = {}
        if token is not None:
            headers[b"Authorization"] = [b"Bearer " + token.encode()]
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            headers[b"Content-Type"] = [b"application/json"]
        response = yield self.http.request(method, self.base + path, headers=headers, data=data)
        content = yield treq.content(response)
        return response, content

    @defer.inlineCallbacks
    def json_call(self, *args, **kwargs):
        response, content = yield self.call(*args, **kwargs)
        self.assertEqual(response.headers.getRawHeaders(b"content-type"),
                         [b"application/json; charset=utf-8"])
        return response.code, json.loads(content)

    def log_text(self):
        return "\n".join(formatEvent(e) or "" for e in self.events)


class ApiReadTests(WebTestCase):

    @defer.inlineCallbacks
    def test_list(self):
        code, body = yield self.json_call("GET", "/api/plugs")
        self.assertEqual(code, 200)
        plugs = {p["id"]: p for p in body["plugs"]}
        self.assertEqual(list(plugs), ["fridge", "ev", "lamp", "meter", "lights"])
        self.assertEqual(plugs["fridge"]["watts"], 120.5)
        self.assertEqual(plugs["fridge"]["alias"], "Kids' <Fridge> & Co")
        self.assertEqual(plugs["ev"]["watts"], 1500.0)
        self.assertTrue(plugs["ev"]["mutable"])
        self.assertFalse(plugs["fridge"]["mutable"])
        self.assertEqual(plugs["meter"]["kind"], "http")
        self.assertEqual(plugs["meter"]["watts"], 2345.5)
        self.assertIsNotNone(plugs["meter"]["updated"])
        self.assertGreaterEqual(plugs["meter"]["age"], 0.0)
        self.assertEqual(plugs["lamp"]["aggregate"], "lights")
        self.assertFalse(plugs["lamp"]["reported"])
        self.assertTrue(plugs["lights"]["reported"])
        self.assertEqual(plugs["lights"]["elements"], ["lamp"])
        self.assertEqual(plugs["lights"]["watts"], 10.0)
        self.assertEqual(plugs["ev"]["mac"], "53:75:31:00:00:02")

    @defer.inlineCallbacks
    def test_get_one(self):
        code, body = yield self.json_call("GET", "/api/plugs/ev")
        self.assertEqual(code, 200)
        self.assertEqual((body["id"], body["alias"], body["watts"], body["on"]),
                         ("ev", "EV Charger", 1500.0, True))
        code, body = yield self.json_call("GET", "/api/plugs/")
        self.assertEqual(code, 200)
        self.assertEqual(len(body["plugs"]), 5)

    @defer.inlineCallbacks
    def test_unknown_plug_and_path(self):
        code, body = yield self.json_call("GET", "/api/plugs/nope")
        self.assertEqual(code, 404)
        self.assertIn("nope", body["error"])
        code, body = yield self.json_call("GET", "/api/plugs/ev/extra")
        self.assertEqual(code, 404)
        code, body = yield self.json_call("GET", "/api/other")
        self.assertEqual(code, 404)
        code, body = yield self.json_call("GET", "/nothing-here")
        self.assertEqual(code, 404)


class ApiWriteTests(WebTestCase):

    @defer.inlineCallbacks
    def test_put_needs_the_token(self):
        response, content = yield self.call("PUT", "/api/plugs/ev", {"power": 1})
        self.assertEqual(response.code, 401)
        self.assertIn("Bearer", json.loads(content)["error"])
        self.assertEqual(response.headers.getRawHeaders(b"www-authenticate"),
                         [b'Bearer realm="senselink"'])
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"power": 1}, token="wrong")
        self.assertEqual(code, 401)
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"power": 1},
                                          token=TOKEN + "x")
        self.assertEqual(code, 401)
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)
        # Unknown plugs are not revealed without the token either.
        code, body = yield self.json_call("PUT", "/api/plugs/nope", {"power": 1})
        self.assertEqual(code, 401)

    @defer.inlineCallbacks
    def test_put_power_and_state(self):
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"power": 3600.5}, token=TOKEN)
        self.assertEqual(code, 200)
        self.assertEqual(body["watts"], 3600.5)
        self.assertEqual(self.service.plugs["ev"].watts, 3600.5)
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"state": "off"}, token=TOKEN)
        self.assertEqual((code, body["watts"], body["on"]), (200, 2.0, False))
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"state": "on"}, token=TOKEN)
        self.assertEqual((code, body["watts"], body["on"]), (200, 7200.0, True))
        code, body = yield self.json_call("PUT", "/api/plugs/lamp", {"power": 0}, token=TOKEN)
        self.assertEqual((code, body["watts"]), (200, 0.0))
        code, body = yield self.json_call("GET", "/api/plugs/lights")
        self.assertEqual(body["watts"], 0.0)
        code, body = yield self.json_call("PUT", "/api/plugs/lamp", {"state": "on"}, token=TOKEN)
        self.assertEqual(body["watts"], 10.0)   # no max_watts: the configured power
        self.assertNotIn(TOKEN, self.log_text())

    @defer.inlineCallbacks
    def test_wrong_bodies(self):
        bad = [{"power": "12"}, {"power": True}, {"power": -1}, {"power": None}, {"power": [1]},
               {"state": "maybe"}, {"state": True}, {}, [], 5, {"power": 1, "color": "red"}]
        for body in bad:
            code, answer = yield self.json_call("PUT", "/api/plugs/ev", body, token=TOKEN)
            self.assertEqual(code, 400, body)
            self.assertIsInstance(answer["error"], str)
        for raw in (b"NaN", b'{"power": NaN}', b'{"power": Infinity}', b'{"power": 1e999}',
                    b'{"power": 1' + b"0" * 400 + b"}", b'{"power": -0.5}',
                    b"not json", b"\xff\xfe", b""):
            code, answer = yield self.json_call("PUT", "/api/plugs/ev", raw=raw, token=TOKEN)
            self.assertEqual(code, 400, raw)
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)

    @defer.inlineCallbacks
    def test_unknown_and_not_mutable(self):
        code, body = yield self.json_call("PUT", "/api/plugs/nope", {"power": 1}, token=TOKEN)
        self.assertEqual(code, 404)
        for plug_id in ("fridge", "meter", "lights"):
            code, body = yield self.json_call("PUT", f"/api/plugs/{plug_id}", {"power": 1},
                                              token=TOKEN)
            self.assertEqual(code, 409, plug_id)
            self.assertIn("mutable", body["error"])
        self.assertEqual(self.service.plugs["fridge"].watts, 120.5)

    @defer.inlineCallbacks
    def test_oversized_body(self):
        body = json.dumps({"power": 5, "pad": "x" * (70 * 1024)}).encode()
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", raw=body, token=TOKEN)
        self.assertEqual(code, 413)
        self.assertIn("larger than", answer["error"])
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)
        # Just under the limit is read (and refused for its unknown key, not its size).
        body = b'{"power": 5' + b" " * (60 * 1024) + b"}"
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", raw=body, token=TOKEN)
        self.assertEqual((code, self.service.plugs["ev"].watts), (200, 5.0))

    @defer.inlineCallbacks
    def test_oversized_chunked_body(self):
        response = yield self.http.request(
            "PUT", self.base + "/api/plugs/ev", data=ChunkedBody([b"x" * 8192] * 10),
            headers={b"Authorization": [b"Bearer " + TOKEN.encode()]})
        answer = json.loads((yield treq.content(response)))
        self.assertEqual(response.code, 413)
        self.assertIn("larger than", answer["error"])
        response = yield self.http.request(
            "PUT", self.base + "/api/plugs/ev", data=ChunkedBody([b'{"power":', b" 12}"]),
            headers={b"Authorization": [b"Bearer " + TOKEN.encode()]})
        self.assertEqual(response.code, 200)
        yield treq.content(response)
        self.assertEqual(self.service.plugs["ev"].watts, 12.0)

    @defer.inlineCallbacks
    def test_get_is_not_put(self):
        response, _ = yield self.call("POST", "/api/plugs/ev", {"power": 1}, token=TOKEN)
        self.assertEqual(response.code, 405)


class ReadOnlyTests(WebTestCase):
    token = None

    @defer.inlineCallbacks
    def test_put_without_configured_token(self):
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"power": 1}, token="anything")
        self.assertEqual(code, 403)
        self.assertIn("read-only", body["error"])
        code, body = yield self.json_call("GET", "/api/plugs/ev")
        self.assertEqual(code, 200)


class KasaClient(DatagramProtocol):
    def __init__(self):
        self.replies = []

    def datagramReceived(self, data, addr):
        self.replies.append(json.loads(cipher.decrypt(data)))


class MetricsTests(WebTestCase):

    @defer.inlineCallbacks
    def test_metrics_match_live_values(self):
        client = KasaClient()
        port = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = ("127.0.0.1", self.service.udp_port)
        sense = cipher.encrypt(b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}}}')
        echo = cipher.encrypt(b'{"emeter":{"get_realtime":{"power":1}},'
                              b'"system":{"get_sysinfo":{}}}')
        for datagram in (sense, sense, echo, b"\x00garbage"):
            port.write(datagram, address)
        reported = len(self.service.plugs.reported)
        counters = self.service.responder.counters
        yield wait_until(lambda: len(client.replies) == 2 * reported
                         and sum(counters.ignored.values()) == 2)
        self.service.plugs["ev"].set_power(777.0)

        response, content = yield self.call("GET", "/metrics")
        self.assertEqual(response.code, 200)
        self.assertTrue(response.headers.getRawHeaders(b"content-type")[0]
                        .startswith(b"text/plain"))
        families = {f.name: f for f in text_string_to_metric_families(content.decode())}
        samples = {}
        for family in families.values():
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

        def value(name, **labels):
            return samples[(name, tuple(sorted(labels.items())))]

        for plug in self.service.plugs:
            labels = {"plug": plug.id, "alias": plug.alias, "kind": plug.kind}
            self.assertEqual(value("senselink_plug_watts", **labels), plug.watts)
            self.assertEqual(value("senselink_plug_on", **labels), 1.0 if plug.on else 0.0)
        self.assertEqual(value("senselink_plug_watts", plug="ev", alias="EV Charger",
                               kind="mutable"), 777.0)
        self.assertEqual(families["senselink_requests"].type, "counter")
        self.assertEqual(value("senselink_requests_total", kind="sense"), 2)
        self.assertEqual(value("senselink_replies_total", kind="sense"), 2 * reported)
        self.assertEqual(value("senselink_requests_ignored_total", reason="echo"), 1)
        self.assertEqual(value("senselink_requests_ignored_total", reason="malformed"), 1)
        [poller] = self.service.sources
        source = {"source": "0", "kind": "http", "label": poller.label}
        self.assertEqual(value("senselink_source_connected", **source), 1.0)
        age = value("senselink_source_last_update_age_seconds", **source)
        self.assertGreaterEqual(age, 0.0)
        self.assertLess(age, 60.0)
        self.assertEqual(value("senselink_requests_ignored_total", reason="oversized"), 0)
        self.assertNotIn(TOKEN, content.decode())


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
        # No external assets.
        for tag, attrs in checker.tags:
            self.assertNotIn(tag, ("script", "img", "link"))
            for name in ("src", "href"):
                if name in attrs:
                    self.assertTrue(attrs[name].startswith("/"), attrs)
        self.assertNotIn(TOKEN, page)
        # Requests are not logged at INFO (page reloads and scrapes would flood the log).
        self.assertNotIn('"GET / HTTP/1.1"', self.log_text())


class ConfigTests(unittest.TestCase):

    def problems(self, text):
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text(text, "w.yml")
        return "\n".join(caught.exception.problems)

    SOURCES = "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n"

    def test_defaults_and_absence(self):
        cfg = config.load_text("web: {}\n" + self.SOURCES, "w.yml")
        self.assertEqual(cfg.options["web"].listen, "tcp:8080:interface=127.0.0.1")
        self.assertIsNone(cfg.options["web"].token)
        cfg = config.load_text(self.SOURCES, "w.yml")
        self.assertIsNone(cfg.options["web"])
        service = makeService(cfg, port=0, interface="127.0.0.1")
        self.assertIsNone(service.web)
        self.assertNotIn("web", [child.name for child in service])

    def test_bad_listen(self):
        text = self.problems("web:\n  listen: nonsense:1\n" + self.SOURCES)
        self.assertIn("w.yml:1: web: listen (line 2): expected a Twisted endpoint string", text)

    def test_bad_keys_and_token(self):
        text = self.problems("web:\n  listen: tcp:0\n  tokn: x\n" + self.SOURCES)
        self.assertIn("unknown web key 'tokn' (line 3)", text)
        text = self.problems("web:\n  token: [a, b]\n" + self.SOURCES)
        self.assertIn("token (line 2): expected text", text)
        text = self.problems("web: 5\n" + self.SOURCES)
        self.assertIn("w.yml:1: web: expected a mapping", text)

    def test_token_is_never_shown(self):
        cfg = config.load_text(f"web:\n  token: {TOKEN}\n" + self.SOURCES, "w.yml")
        self.assertEqual(cfg.options["web"].token, TOKEN)
        self.assertNotIn(TOKEN, repr(cfg.options["web"]))
        self.assertNotIn(TOKEN, repr(WebOptions(token=TOKEN)))

    def test_listen_failure_is_one_line(self):
        from senselink.errors import StartupError
        from twisted.internet.protocol import Factory
        busy = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(busy.stopListening)
        cfg = config.load_text(f"web:\n  listen: tcp:{busy.getHost().port}:interface=127.0.0.1\n"
                               + self.SOURCES, "w.yml")
        service = makeService(cfg, port=0, interface="127.0.0.1", foreground=False)
        error = self.assertRaises(StartupError, service.privilegedStartService)
        self.assertEqual(f"cannot listen for the web interface on 127.0.0.1:"
                         f"{busy.getHost().port}: Address already in use", str(error))
        self.flushLoggedErrors()


class SecretFileTests(unittest.TestCase):
    """A token or header written in a world-readable config file is warned about, by key only."""

    def write(self, text, mode):
        import os
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_literal_token_in_world_readable_file(self):
        path = self.write(f"web:\n  listen: tcp:0\n  token: {TOKEN}\n" + ConfigTests.SOURCES,
                          0o644)
        cfg = config.load(path)
        warnings = [w for w in cfg.warnings if "readable by other users" in w]
        self.assertEqual(len(warnings), 1, cfg.warnings)
        self.assertIn("web.token at line 3", warnings[0])
        self.assertNotIn(TOKEN, "\n".join(cfg.warnings))

    def test_token_from_environment_or_private_file(self):
        import os
        os.environ["SENSELINK_TEST_WEB_TOKEN"] = TOKEN
        self.addCleanup(os.environ.pop, "SENSELINK_TEST_WEB_TOKEN")
        path = self.write("web:\n  token: ${SENSELINK_TEST_WEB_TOKEN}\n" + ConfigTests.SOURCES,
                          0o644)
        cfg = config.load(path)
        self.assertEqual(cfg.options["web"].token, TOKEN)
        self.assertEqual([w for w in cfg.warnings if "readable" in w], [])
        path = self.write(f"web:\n  token: {TOKEN}\n" + ConfigTests.SOURCES, 0o600)
        self.assertEqual([w for w in config.load(path).warnings if "readable" in w], [])

    def test_literal_http_header(self):
        path = self.write("sources:\n- http:\n    url: http://127.0.0.1/\n"
                          "    headers:\n      Authorization: Bearer abc\n"
                          "    plugs:\n    - a: {}\n", 0o644)
        warnings = [w for w in config.load(path).warnings if "readable by other users" in w]
        self.assertEqual(len(warnings), 1)
        self.assertIn("headers.Authorization at line 5", warnings[0])
        self.assertNotIn("abc", warnings[0])


RELOAD_CONFIG = """\
web:
  listen: {listen}
  token: {token}
sources:
- mutable:
    plugs:
    - heater:
        alias: Heater
        power: 100
        max_watts: {heater_max}
        mac: 53:75:31:00:01:01
{extra}"""

KETTLE = """\
    - kettle:
        alias: Kettle
        power: 0
        max_watts: 2200
        off_usage: 1.5
        mac: 53:75:31:00:01:02
"""


class ReloadTests(unittest.TestCase):
    """SIGHUP (reload) and the web interface: it always serves the running config."""

    def setUp(self):
        self.path = self.mktemp()
        self.write()
        self.service = makeService(config.load(self.path), port=0, interface="127.0.0.1")
        self.service.startService()
        self.addCleanup(self.service.stopService)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    def write(self, listen="tcp:0:interface=127.0.0.1", token=TOKEN, heater_max=1000, extra=""):
        with open(self.path, "w") as f:
            f.write(RELOAD_CONFIG.format(listen=listen, token=token, heater_max=heater_max,
                                         extra=extra))

    @defer.inlineCallbacks
    def put(self, plug_id, body, token=TOKEN, port=None):
        port = port or self.service.web.endpoint.port
        response = yield self.http.request(
            "PUT", f"http://127.0.0.1:{port}/api/plugs/{plug_id}", data=json.dumps(body).encode(),
            headers={b"Authorization": [b"Bearer " + token.encode()],
                     b"Content-Type": [b"application/json"]})
        content = yield treq.content(response)
        return response.code, json.loads(content)

    @defer.inlineCallbacks
    def test_a_mutable_plug_added_by_a_reload_is_switched_with_its_settings(self):
        self.write(heater_max=1500, extra=KETTLE)
        yield self.service.reloader.reload()
        code, body = yield self.put("kettle", {"state": "on"})
        self.assertEqual((code, body["watts"], body["on"]), (200, 2200.0, True))
        self.assertEqual(self.service.plugs["kettle"].watts, 2200.0)
        code, body = yield self.put("kettle", {"state": "off"})
        self.assertEqual((code, body["watts"], body["on"]), (200, 1.5, False))
        # The kept plug follows its new max_watts.
        code, body = yield self.put("heater", {"state": "on"})
        self.assertEqual((code, body["watts"]), (200, 1500.0))

    @defer.inlineCallbacks
    def test_a_new_token_applies_at_once_without_rebinding(self):
        web, port = self.service.web, self.service.web.endpoint.port
        self.write(token="another-token-of-enough-length")
        yield self.service.reloader.reload()
        self.assertIs(self.service.web, web)
        code, _ = yield self.put("heater", {"power": 5})
        self.assertEqual(code, 401)
        code, body = yield self.put("heater", {"power": 5}, token="another-token-of-enough-length",
                                    port=port)
        self.assertEqual((code, body["watts"]), (200, 5.0))

    @defer.inlineCallbacks
    def test_a_changed_listen_rebinds(self):
        from tests.support import free_port
        old_port = self.service.web.endpoint.port
        new_port = free_port()
        self.write(listen=f"tcp:{new_port}:interface=127.0.0.1")
        summary = yield self.service.reloader.reload()
        self.assertIn("web", summary.settings_changed)
        self.assertEqual(self.service.web.endpoint.port, new_port)
        code, body = yield self.put("heater", {"power": 7}, port=new_port)
        self.assertEqual((code, body["watts"]), (200, 7.0))
        with self.assertRaises(Exception):
            yield self.put("heater", {"power": 8}, port=old_port)
        self.flushLoggedErrors()
