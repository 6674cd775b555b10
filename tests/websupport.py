"""Shared by the web interface tests: a running daemon with the web on 127.0.0.1, port 0."""

import json
import os

import treq

from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from senselink import config
from senselink.service import makeService
from tests.httpserver import Meter, serve
from tests.support import wait_until

TOKEN = "t0ken-that-must-never-show"

CONFIG = """\
state_file: {state}
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


class WebTestCase(unittest.TestCase):

    token = TOKEN

    @defer.inlineCallbacks
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 2345.5}')
        self.meter_port = serve(self, self.meter)
        # A state file of its own: values set at run time in one test stay out of the next.
        self.state = self.mktemp() + ".json"
        self.config = config.load_text(self.config_text(self.token), "web.yml")
        self.service = makeService(self.config, port=0, interface="127.0.0.1")
        self.service.startService()
        self.addCleanup(self.service.stopService)
        [poller] = self.service.sources
        yield wait_until(lambda: poller.last_update is not None)
        self.base = f"http://127.0.0.1:{self.service.web.endpoint.port}"
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.http = treq.client.HTTPClient(Agent(reactor, pool=pool))

    def config_text(self, token):
        return CONFIG.format(token=token if token else "null", meter_port=self.meter_port,
                             state=os.path.abspath(self.state))

    def reload(self, token):
        """Reload the daemon from a file with this config and C{token} (a Deferred)."""
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(self.config_text(token))
        return self.service.reloader.reload(path)

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
