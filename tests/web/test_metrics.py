"""Prometheus metrics (C{/metrics}) against a running daemon answering Kasa requests."""

import json

from prometheus_client.parser import text_string_to_metric_families

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol

from senselink.kasa import cipher
from tests.support import wait_until
from tests.websupport import TOKEN, WebTestCase


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
        # Energy, as /api has it, and who polls (Sense apart from Kasa clients).
        self.assertEqual(families["senselink_energy_kwh"].type, "counter")
        code, listing = yield self.json_call("GET", "/api/plugs")
        for plug in listing["plugs"]:
            self.assertAlmostEqual(value("senselink_energy_kwh_total", plug=plug["id"]),
                                   plug["energy"]["total_kwh"], places=3)
        polling = self.service.polling
        self.assertEqual(value("senselink_last_request_timestamp_seconds", client="sense"),
                         polling.sense.last)
        self.assertGreater(value("senselink_polls_per_minute", client="sense"), 0.0)
        self.assertEqual(value("senselink_polls_per_minute", client="kasa"), 0.0)
        self.assertEqual(value("senselink_client_last_seen_timestamp_seconds", client="sense",
                               address="127.0.0.1"), polling.sense.last)
        self.assertEqual(value("senselink_source_error", **source), 0.0)
