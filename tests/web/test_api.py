"""The JSON API (C{/api/plugs}) through treq against a real listener on 127.0.0.1, port 0."""

import json

import treq

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer

from twisted.logger import formatEvent

from senselink.kasa import messages
from tests.support import LOOPBACK
from tests.websupport import TOKEN, WebTestCase


class SenseClient(DatagramProtocol):
    """One Sense request to C{port}; C{answered} fires with the first reply."""

    def __init__(self, port):
        self.port = port
        self.answered = defer.Deferred()

    def startProtocol(self):
        self.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, self.port))

    def datagramReceived(self, data, address):
        if not self.answered.called:
            self.answered.callback(data)


@defer.inlineCallbacks
def sense_poll(port):
    """A Sense request to the daemon on C{port}, answered."""
    client = SenseClient(port)
    listening = reactor.listenUDP(0, client, interface=LOOPBACK)
    try:
        yield client.answered
    finally:
        yield listening.stopListening()


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


class ApiMoreTests(WebTestCase):

    @defer.inlineCallbacks
    def test_energy_in_plugs(self):
        code, body = yield self.json_call("GET", "/api/plugs")
        for plug in body["plugs"]:
            energy = plug["energy"]
            self.assertEqual(set(energy), {"today_kwh", "month_kwh", "total_kwh"})
            self.assertGreaterEqual(energy["total_kwh"], energy["month_kwh"])
            self.assertGreaterEqual(energy["month_kwh"], energy["today_kwh"])
            self.assertGreaterEqual(energy["today_kwh"], 0.0)
        self.service.meter["ev"].total_wh += 2500.0          # 2.5 kWh counted earlier
        code, one = yield self.json_call("GET", "/api/plugs/ev")
        self.assertGreaterEqual(one["energy"]["total_kwh"], 2.5)

    @defer.inlineCallbacks
    def test_history(self):
        self.service.set_power("ev", 100.0)
        code, body = yield self.json_call("GET", "/api/plugs/ev/history")
        self.assertEqual(code, 200)
        self.assertEqual((body["id"], body["watts"]), ("ev", 100.0))
        self.assertEqual(body["recent"][-1][1], 100.0)
        self.assertEqual(len(body["minutes"][-1]), 4)
        self.assertEqual(len(body["days"]), 30)
        self.assertRegex(body["days"][-1][0], r"^\d{4}-\d\d-\d\d$")
        code, body = yield self.json_call("GET", "/api/plugs/nope/history")
        self.assertEqual(code, 404)
        code, body = yield self.json_call("GET", "/api/plugs/ev/history/more")
        self.assertEqual(code, 404)

    @defer.inlineCallbacks
    def test_status_and_silence(self):
        code, body = yield self.json_call("GET", "/api/status")
        self.assertEqual(code, 200)
        self.assertEqual((body["plugs"], body["reported"], body["quiet"], body["target"]),
                         (5, 4, False, None))
        self.assertTrue(body["writable"])
        self.assertIsNone(body["silence"])              # within the first minute
        self.assertEqual(body["sense"]["requests"], 0)
        self.assertEqual(body["sources"][0]["last_error"], None)
        self.service.polling.silence = 0.0
        code, body = yield self.json_call("GET", "/api/status")
        silence = body["silence"]
        self.assertTrue(silence["since_start"])
        self.assertEqual([c["cause"] for c in silence["causes"]],
                         ["subnet", "docker", "firewall", "allow_from", "quiet", "target"])
        self.assertEqual({c["cause"]: c["applies"] for c in silence["causes"]}["quiet"], False)
        port = self.service.udp_port                    # an ephemeral port, not 9999
        self.assertNotEqual(port, 9999)
        self.assertEqual(silence["causes"][2]["text"],
                         f"A firewall drops UDP port {port}, on this host or between it and "
                         f"the monitor.")

        # Sense polled, then went quiet: the causes are about a monitor that stopped.
        yield sense_poll(port)
        code, body = yield self.json_call("GET", "/api/status")
        silence = body["silence"]
        self.assertFalse(silence["since_start"])
        self.assertEqual(body["sense"]["requests"], 1)
        self.assertEqual([c["cause"] for c in silence["causes"]],
                         ["monitor", "network", "address", "firewall", "allow_from", "quiet",
                          "target"])
        texts = " ".join(c["text"] for c in silence["causes"])
        self.assertIn(f"A firewall started dropping UDP port {port} ", texts)
        self.assertIn("This host's IP address changed", texts)
        self.assertNotIn("Docker", texts)

    @defer.inlineCallbacks
    def test_unsupported_methods_are_json_405(self):
        for method, path, allowed in (("DELETE", "/api/plugs/ev", b"GET, HEAD, PUT"),
                                      ("POST", "/api/plugs", b"GET, HEAD"),
                                      ("DELETE", "/", b"GET, HEAD"),
                                      ("PATCH", "/metrics", b"GET, HEAD"),
                                      ("POST", "/api/status", b"GET, HEAD"),
                                      ("PUT", "/api/events", b"GET, HEAD"),
                                      ("BREW", "/static/status.js", b"GET, HEAD")):
            response, content = yield self.call(method, path)
            self.assertEqual(response.code, 405, (method, path))
            self.assertEqual(response.headers.getRawHeaders(b"allow"), [allowed])
            self.assertIn(method, json.loads(content)["error"])
        response, content = yield self.call("HEAD", "/api/plugs")
        self.assertEqual((response.code, content), (200, b""))

    @defer.inlineCallbacks
    def test_undecodable_id_is_named(self):
        code, body = yield self.json_call("GET", "/api/plugs/%ff")
        self.assertEqual(code, 404)
        self.assertEqual(body["id"], "%FF")
        self.assertIn("'%FF'", body["error"])


class ShortTokenTests(WebTestCase):

    token = "short-token"

    def test_short_token_is_a_warning(self):
        lines = [e for e in self.events if "web token is 11 characters" in (formatEvent(e) or "")]
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["log_level"].name, "warn")
        self.assertNotIn("short-token", self.log_text())


class ShortTokenReloadTests(WebTestCase):
    """A reload that sets a new short token warns once: the token applies at once."""

    def short_token_warnings(self):
        return [formatEvent(e) for e in self.events if "The web token is" in (formatEvent(e) or "")
                and e["log_level"].name == "warn"]

    @defer.inlineCallbacks
    def test_a_reload_to_a_short_token_is_a_warning_once(self):
        web = self.service.web
        self.assertEqual(self.short_token_warnings(), [])
        yield self.reload("short-token")
        self.assertIs(self.service.web, web)         # the same listener, the new token
        (warning,) = self.short_token_warnings()
        self.assertIn("The web token is 11 characters long: use at least 16", warning)
        code, body = yield self.json_call("PUT", "/api/plugs/ev", {"power": 5},
                                          token="short-token")
        self.assertEqual((code, body["watts"]), (200, 5.0))
        # The same short token again: not repeated.
        yield self.reload("short-token")
        self.assertEqual(len(self.short_token_warnings()), 1)
        # Another short one is another change; a long one is no warning.
        yield self.reload("short-token-2")
        yield self.reload(TOKEN)
        self.assertEqual([w.split(" characters")[0] for w in self.short_token_warnings()],
                         ["The web token is 11", "The web token is 13"])
        self.assertNotIn("short-token", self.log_text())


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
    def test_deeply_nested_body_is_a_json_400(self):
        for raw in (b'{"power": ' + b"[" * 30000 + b"]" * 30000 + b"}", b"[" * 30000,
                    b'{"a":' * 10000 + b"1" + b"}" * 10000):
            code, answer = yield self.json_call("PUT", "/api/plugs/ev", raw=raw, token=TOKEN)
            self.assertEqual(code, 400)
            self.assertIn("nests deeper than 8 levels", answer["error"])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertNotIn("RecursionError", self.log_text())
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", raw=b'{"power": 7}',
                                            token=TOKEN)
        self.assertEqual((code, answer["watts"]), (200, 7.0))

    @defer.inlineCallbacks
    def test_off_with_power_is_a_contradiction(self):
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", {"state": "off", "power": 50},
                                            token=TOKEN)
        self.assertEqual(code, 400)
        self.assertIn('"state": "off" contradicts "power": 50', answer["error"])
        self.assertIn("off_usage", answer["error"])
        self.assertEqual(self.service.plugs["ev"].watts, 1500.0)
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", {"state": "off", "power": 0},
                                            token=TOKEN)
        self.assertEqual((code, answer["watts"], answer["on"]), (200, 0.0, False))
        code, answer = yield self.json_call("PUT", "/api/plugs/ev", {"state": "on", "power": 50},
                                            token=TOKEN)
        self.assertEqual((code, answer["watts"], answer["on"]), (200, 50.0, True))

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
