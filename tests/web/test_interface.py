"""The web interface in the daemon: its config section, secrets, listener and reloads."""

import json

import treq

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from senselink import config
from senselink.service import makeService
from senselink.config import WebOptions
from tests.websupport import TOKEN


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
