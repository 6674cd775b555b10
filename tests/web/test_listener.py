"""More listeners of the web interface: --web-port, and --ingress-port that serves
Home Assistant's ingress proxy only; real HTTP on 127.0.0.1."""

import ipaddress
import json
import socket

import treq

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from senselink import config, tap
from senselink.service import INGRESS_PROXY, makeService
from senselink.web.listener import _address
from tests.httpserver import RawGet
from tests.support import with_timeout

CONFIG = """\
sources:
- static:
    plugs:
    - fridge:
        alias: Fridge
        max_watts: 120
        mac: 53:75:31:00:00:01
"""


class ListenerTests(unittest.TestCase):

    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    def start(self, **kwargs):
        daemon = makeService(config.load_text(CONFIG, "web.yml"), port=0,
                             interface="127.0.0.1", environ={}, **kwargs)
        daemon.privilegedStartService()
        daemon.startService()
        self.addCleanup(daemon.stopService)
        return daemon

    def texts(self):
        return [formatEvent(e) for e in self.events]

    @defer.inlineCallbacks
    def get(self, port, path="/"):
        response = yield self.http.get(f"http://127.0.0.1:{port}{path}")
        return response.code, (yield treq.content(response))

    @defer.inlineCallbacks
    def test_web_port_serves_the_page_and_the_api(self):
        daemon = self.start(web_port=0)
        self.assertIsNone(daemon.web)                 # the config has no web section
        port = daemon.getServiceNamed("web-port").endpoint.port
        code, page = yield self.get(port)
        self.assertEqual(code, 200)
        self.assertIn(b"Fridge", page)
        code, body = yield self.get(port, "/api/plugs/fridge")
        self.assertEqual((code, json.loads(body)["watts"]), (200, 120))
        self.assertTrue(any(f"Web interface on http://127.0.0.1:{port}/ (API read-only" in t
                            for t in self.texts()))

    @defer.inlineCallbacks
    def test_ingress_port_serves_the_trusted_proxy(self):
        daemon = self.start(ingress_port=0, ingress_proxy="127.0.0.1")
        port = daemon.getServiceNamed("ingress").endpoint.port
        # What the ingress proxy asks for once it has stripped /api/hassio_ingress/<token>.
        code, page = yield self.get(port)
        self.assertEqual(code, 200)
        self.assertIn(b'href="api/plugs"', page)
        code, body = yield self.get(port, "/api/plugs")
        self.assertEqual(code, 200)
        self.assertTrue(any("for Home Assistant's ingress: only 127.0.0.1 may connect" in t
                            for t in self.texts()))

    @defer.inlineCallbacks
    def test_ingress_port_refuses_everyone_else(self):
        self.assertEqual(INGRESS_PROXY, "172.30.32.2")
        daemon = self.start(ingress_port=0)
        port = daemon.getServiceNamed("ingress").endpoint.port
        for _ in range(3):
            client = RawGet()
            yield with_timeout(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                                               client))
            received = yield with_timeout(client.ended)
            self.assertEqual(received, b"")            # closed at once, nothing served
        refusals = [e for e in self.events
                    if "refused a connection from 127.0.0.1" in (formatEvent(e) or "")]
        self.assertEqual([e["log_level"].name for e in refusals], ["warn", "debug", "debug"])
        self.assertIn("only 172.30.32.2 may connect", formatEvent(refusals[0]))

    def test_a_port_in_use_is_one_line(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        daemon = makeService(config.load_text(CONFIG, "web.yml"), port=0, interface="127.0.0.1",
                             environ={}, ingress_port=taken.getsockname()[1])
        for kasa in ("udp", "tcp"):                 # bound before the web listener failed
            self.addCleanup(daemon.kasa.getServiceNamed(kasa).stopService)
        with self.assertRaises(SystemExit) as caught:
            daemon.privilegedStartService()
        self.assertIn("cannot listen for the web interface (--ingress-port) on 127.0.0.1:",
                      str(caught.exception))

    def test_addresses(self):
        self.assertEqual(_address("::ffff:172.30.32.2"), ipaddress.ip_address("172.30.32.2"))
        self.assertEqual(_address("172.30.32.2"), ipaddress.ip_address("172.30.32.2"))
        self.assertIsNone(_address("not an address"))

    def test_options(self):
        options = tap.Options()
        options.parseOptions(["--web-port", "8080", "--ingress-port", "8099"])
        self.assertEqual((options["web-port"], options["ingress-port"]), (8080, 8099))
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual((options["web-port"], options["ingress-port"]), (None, None))
