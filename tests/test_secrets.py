"""Secrets (tokens, passwords) never reach logs, error messages, the web interface or `check`.

The config holds distinct, recognisable secrets: the Home Assistant token
(and a rejected one), the MQTT password (and a wrong one), the web token,
an http source's Authorization header and the password in an http URL.
The daemon runs at DEBUG, in process (every log event captured) and once
as C{twistd -n} (its whole output captured); the sources connect, get
refused and fail, the web interface is read, the config is reloaded, and
no secret may show up anywhere. Config files that hold secrets and are
readable by other users log a WARNING.
"""

import base64
import json
import os
import sys
import textwrap

import treq
from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink import config as config_module
from senselink.service import makeService
from tests import processes
from tests.hass_server import FakeHomeAssistant
from tests.httpserver import serve
from tests.mosquitto import started_broker
from tests.support import free_port
from tests.httpserver import Meter
from tests.support import wait_until

HA_TOKEN = "haTOKEN-7f3c9a1e-secret"
HA_WRONG = "haWRONG-2b8d4e6f-secret"
MQTT_USER = "senselink"
MQTT_PASSWORD = "mqttPASS-5a1c7e9b-secret"
MQTT_WRONG = "mqttWRONG-8e2f4a6c-secret"
WEB_TOKEN = "webTOKEN-3d9b1f7a-secret"
HTTP_BEARER = "httpBEARER-6c4e8a2d-secret"
HTTP_URL_PASSWORD = "httpURLPW-1f5b9d3e-secret"
SECRETS = [HA_TOKEN, HA_WRONG, MQTT_PASSWORD, MQTT_WRONG, WEB_TOKEN, HTTP_BEARER,
           HTTP_URL_PASSWORD]
# Shorter marks catch a secret cut short or quoted differently, and the Basic header's base64.
MARKS = SECRETS + [s.split("-")[1] for s in SECRETS] + [
    base64.b64encode(f"meter:{HTTP_URL_PASSWORD}".encode()).decode()]


def leaks(text):
    return [mark for mark in MARKS if mark in text]


def daemon_config(broker_port, hass_url, meter_port, web_listen, ha_token=HA_TOKEN,
                  web_token=WEB_TOKEN):
    return f"""\
web:
  listen: {web_listen}
  token: {web_token}
sources:
- mqtt:
    host: 127.0.0.1
    port: {broker_port}
    username: {MQTT_USER}
    password: {MQTT_PASSWORD}
    client_id: secrets-good
    plugs:
    - mqtt_good:
        mac: 53:75:31:00:01:01
        power_topic: home/good
- mqtt:
    host: 127.0.0.1
    port: {broker_port}
    username: {MQTT_USER}
    password: {MQTT_WRONG}
    client_id: secrets-bad
    plugs:
    - mqtt_bad:
        mac: 53:75:31:00:01:02
        power_topic: home/bad
- hass:
    url: {hass_url}
    auth_token: {ha_token}
    plugs:
    - hass_good:
        mac: 53:75:31:00:01:03
        entity_id: sensor.good_power
- hass:
    url: {hass_url}
    auth_token: {HA_WRONG}
    plugs:
    - hass_bad:
        mac: 53:75:31:00:01:04
        entity_id: sensor.bad_power
- http:
    url: http://127.0.0.1:{meter_port}/meter
    interval: 1
    timeout: 1
    headers:
      Authorization: Bearer {HTTP_BEARER}
    plugs:
    - http_header:
        mac: 53:75:31:00:01:05
        power_keypath: power
- http:
    url: http://meter:{HTTP_URL_PASSWORD}@127.0.0.1:{meter_port}/meter
    interval: 1
    timeout: 1
    plugs:
    - http_url:
        mac: 53:75:31:00:01:06
        power_keypath: power
- mutable:
    plugs:
    - mutable:
        mac: 53:75:31:00:01:07
"""


class Capture:
    """Every log event while it is installed, at every level."""

    def __init__(self, testcase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testcase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self):
        return [formatEvent(e) for e in self.events]

    def everything(self):
        """Formatted events, their reprs (all fields), and the tracebacks they carry."""
        parts = []
        for event in self.events:
            parts.append(formatEvent(event))
            parts.append(repr(event))
            failure = event.get("log_failure")
            if failure is not None:
                parts.append(failure.getTraceback())
        return "\n".join(parts)

    def has(self, text):
        return any(text in t for t in self.texts())


def write(testcase, text, mode=0o600, name="senselink.yml"):
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


@defer.inlineCallbacks
def get(url, **kwargs):
    response = yield treq.get(url, persistent=False, **kwargs).addTimeout(10, reactor)
    body = yield treq.content(response).addTimeout(10, reactor)
    return response, body.decode("utf-8", "replace")


@defer.inlineCallbacks
def put(url, body, token):
    response = yield treq.put(url, data=json.dumps(body).encode(), persistent=False,
                              headers={"Authorization": [f"Bearer {token}"]}).addTimeout(10, reactor)
    text = yield treq.content(response).addTimeout(10, reactor)
    return response, text.decode("utf-8", "replace")


class Servers:
    """The broker (with a password), Home Assistant (one token) and the HTTP meter."""

    @defer.inlineCallbacks
    def start_servers(self):
        self.broker = yield started_broker(self, users={MQTT_USER: MQTT_PASSWORD})
        yield self.broker.publish("home/good", "11", retain=True)
        self.home = FakeHomeAssistant(HA_TOKEN)
        self.home.listen()
        self.addCleanup(lambda: self.home.port is not None and self.home.stop())
        self.home.set_state("sensor.good_power", "22")
        self.home.set_state("sensor.bad_power", "23")
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 33}')
        self.meter_port = serve(self, self.meter)

    def check_meter_saw_secrets(self):
        """The secrets were really in use: the meter got both kinds of credentials."""
        sent = [v for r in self.meter.requests for v in r["headers"].get(b"Authorization", [])]
        self.assertIn(f"Bearer {HTTP_BEARER}".encode(), sent)
        basic = base64.b64encode(f"meter:{HTTP_URL_PASSWORD}".encode())
        self.assertIn(b"Basic " + basic, sent)

    @defer.inlineCallbacks
    def read_web(self, base):
        """Everything the web interface shows, and the answers to PUTs with good and bad tokens."""
        pages = []
        for path in ("/api/plugs", "/api/plugs/hass_good", "/api/plugs/http_url",
                     "/api/plugs/mqtt_bad", "/metrics", "/"):
            response, body = yield get(base + path)
            self.assertEqual(response.code, 200, path)
            pages.append(body + repr(list(response.headers.getAllRawHeaders())))
        for token, code in ((HA_TOKEN, 401), (WEB_TOKEN, 200)):
            response, body = yield put(base + "/api/plugs/mutable", {"power": 44}, token)
            self.assertEqual(response.code, code, body)
            pages.append(body + repr(list(response.headers.getAllRawHeaders())))
        text = "\n".join(pages)
        self.assertIn("hass_good", text)
        self.assertIn("http://127.0.0.1:", text)     # the http source's label, without userinfo
        return text


class DaemonTests(Servers, unittest.TestCase):
    """The daemon in process, at DEBUG, every log event captured."""

    @defer.inlineCallbacks
    def test_no_secret_in_logs_or_web(self):
        logs = Capture(self)
        yield self.start_servers()
        path = write(self, daemon_config(self.broker.port, self.home.url, self.meter_port,
                                         "tcp:0:interface=127.0.0.1"))
        daemon = makeService(config_module.load(path), port=0, interface="127.0.0.1",
                             reactor=reactor, debug=True)
        daemon.privilegedStartService()
        daemon.startService()
        self.addCleanup(daemon.stopService)
        plugs = daemon.plugs

        # Good credentials work, wrong ones are refused and logged.
        yield wait_until(lambda: plugs["mqtt_good"].watts == 11.0, "the MQTT plug")
        yield wait_until(lambda: plugs["hass_good"].watts == 22.0, "the Home Assistant plug")
        yield wait_until(lambda: plugs["http_header"].watts == 33.0
                         and plugs["http_url"].watts == 33.0, "the HTTP plugs")
        yield wait_until(lambda: logs.has("refused the connection for user 'senselink'"),
                         "the MQTT refusal")
        yield wait_until(lambda: logs.has("rejected the access token"), "the HA rejection")
        self.assertEqual(plugs["hass_bad"].watts, 0.0)
        self.check_meter_saw_secrets()

        # The HTTP endpoint refuses, then the web interface is read and written.
        self.meter.reply = (401, b'{"error": "unauthorized"}')
        yield wait_until(lambda: logs.has("HTTP 401"), "the failed polls")
        web = yield self.read_web(f"http://127.0.0.1:{daemon.web.endpoint.port}")

        # A reload with a new (rejected) Home Assistant token restarts that source.
        with open(path, "w") as f:
            f.write(daemon_config(self.broker.port, self.home.url, self.meter_port,
                                  "tcp:0:interface=127.0.0.1", ha_token=HA_WRONG + "2"))
        rejected = len(self.home.closed)
        yield daemon.reloader.reload().addTimeout(10, reactor)
        yield wait_until(lambda: len(self.home.closed) >= rejected + 1, "the new token's rejection")
        yield daemon.stopService()

        self.assertTrue(any(e.get("log_level") == LogLevel.debug for e in logs.events))
        self.assertEqual(leaks(logs.everything()), [])
        self.assertEqual(leaks(web), [])


class TwistdTests(Servers, processes.Case):
    """C{twistd -n senselink} with LOGLEVEL=DEBUG: its whole output holds no secret."""

    @defer.inlineCallbacks
    def test_no_secret_in_twistd_output(self):
        yield self.start_servers()
        web_port = free_port()
        path = write(self, daemon_config(self.broker.port, self.home.url, self.meter_port,
                                         f"tcp:{web_port}:interface=127.0.0.1"))
        self.patch(os, "environ", {**os.environ, "LOGLEVEL": "DEBUG"})
        daemon = processes.DaemonProcess(self, [
            processes.twistd(), "-n", "--pidfile=", "senselink", "-c", path,
            "-p", str(free_port()), "--interface", "127.0.0.1"])
        base = f"http://127.0.0.1:{web_port}"
        good = set()

        @defer.inlineCallbacks
        def plugs_ready():
            try:
                response, body = yield get(base + "/api/plugs")
            except Exception:
                return    # not listening yet
            watts = {p["id"]: p["watts"] for p in json.loads(body)["plugs"]} \
                if response.code == 200 else {}
            if watts.get("mqtt_good") == 11.0 and watts.get("hass_good") == 22.0 \
                    and watts.get("http_url") == 33.0:
                good.add(True)

        for _ in range(300):   # bounded: 300 x 0.1 s
            if good:
                break
            yield plugs_ready()
            yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertTrue(good, "the daemon did not get its values within 30 s")
        yield wait_until(lambda: len(self.home.closed) >= 1 and self.broker.log().count(
            "not authorised") >= 1, "the refused token and password", timeout=30)
        self.check_meter_saw_secrets()
        self.meter.reply = (500, b"oops")
        requests = len(self.meter.requests)
        yield wait_until(lambda: len(self.meter.requests) >= requests + 4, "failed polls")
        web = yield self.read_web(base)
        output = daemon.stop()
        self.assertIn("rejected the access token", output)
        self.assertIn("refused the connection", output)
        self.assertIn("HTTP 500", output)
        self.assertIn("DEBUG", os.environ["LOGLEVEL"])
        self.assertNotIn("Traceback", output)
        self.assertEqual(leaks(output), [])
        self.assertEqual(leaks(web), [])


class CheckAndErrorTests(processes.Case):
    """`senselink check` and config error messages."""

    def test_check_output(self):
        path = write(self, daemon_config(1883, "ws://127.0.0.1:8123/api/websocket", 8080,
                                         "tcp:8080:interface=127.0.0.1"), mode=0o644)
        result = self.run_quick([sys.executable, "-m", "senselink", "check", "-c", path])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        self.assertIn("valid; 7 plugs", output)
        self.assertIn("readable by other users", output)
        self.assertEqual(leaks(output), [])

    # Secrets of the wrong type or shape: the error says what was expected, not the value.
    BAD = {
        "token list": f"""
            sources:
            - hass:
                url: ws://127.0.0.1:8123
                auth_token: [{HA_TOKEN}]
                plugs:
                - a:
                    entity_id: light.a
        """,
        "token mapping": f"""
            sources:
            - hass:
                url: ws://127.0.0.1:8123
                auth_token: {{{HA_TOKEN}: 1}}
                plugs:
                - a:
                    entity_id: light.a
        """,
        "password list": f"""
            sources:
            - mqtt:
                host: 127.0.0.1
                username: u
                password: [{MQTT_PASSWORD}]
                plugs:
                - a:
                    power_topic: x
        """,
        "password mapping": f"""
            sources:
            - mqtt:
                host: 127.0.0.1
                username: u
                password: {{{MQTT_PASSWORD}: 1}}
                plugs:
                - a:
                    power_topic: x
        """,
        "headers not a mapping": f"""
            sources:
            - http:
                url: http://127.0.0.1:8080/
                headers: Bearer {HTTP_BEARER}
                plugs:
                - a:
                    power_keypath: p
        """,
        "header value a list": f"""
            sources:
            - http:
                url: http://127.0.0.1:8080/
                headers:
                  Authorization: [Bearer {HTTP_BEARER}]
                plugs:
                - a:
                    power_keypath: p
        """,
        "header value two lines": f"""
            sources:
            - http:
                url: http://127.0.0.1:8080/
                headers:
                  Authorization: "Bearer {HTTP_BEARER}\\nX: y"
                plugs:
                - a:
                    power_keypath: p
        """,
        "http url": f"""
            sources:
            - http:
                url: ftp://meter:{HTTP_URL_PASSWORD}@127.0.0.1:8080/
                plugs:
                - a:
                    power_keypath: p
        """,
        "hass url": f"""
            sources:
            - hass:
                url: ftp://user:{HA_TOKEN}@127.0.0.1:8123
                auth_token: x
                plugs:
                - a:
                    entity_id: light.a
        """,
        "hass url port": f"""
            sources:
            - hass:
                url: ws://user:{HA_TOKEN}@127.0.0.1:port
                auth_token: x
                plugs:
                - a:
                    entity_id: light.a
        """,
        "web token list": f"""
            web:
              token: [{WEB_TOKEN}]
            sources: []
        """,
        "web token mapping": f"""
            web:
              token: {{{WEB_TOKEN}: 1}}
            sources: []
        """,
        "unterminated quote": f"""
            sources:
            - hass:
                url: ws://127.0.0.1:8123
                auth_token: "{HA_TOKEN}
                plugs: [
        """,
    }

    def test_config_errors(self):
        for name, text in self.BAD.items():
            with self.assertRaises(config_module.ConfigError, msg=name) as caught:
                config_module.load_text(textwrap.dedent(text), "bad.yml")
            message = str(caught.exception)
            self.assertIn("bad.yml:", message, name)
            self.assertEqual(leaks(message), [], f"{name}: {message}")

    def test_type_errors_still_say_what_was_expected(self):
        with self.assertRaises(config_module.ConfigError) as caught:
            config_module.load_text(textwrap.dedent(self.BAD["token list"]), "bad.yml")
        self.assertIn("bad.yml:5: sources[0].hass.auth_token: expected text, got a list ***",
                      str(caught.exception))
        with self.assertRaises(config_module.ConfigError) as caught:
            config_module.load_text(textwrap.dedent(self.BAD["header value two lines"]), "b.yml")
        self.assertIn("the value of header 'Authorization' must be a single line",
                      str(caught.exception))

    def test_check_and_twistd_on_an_invalid_config(self):
        text = textwrap.dedent(self.BAD["token list"]) + textwrap.dedent(
            self.BAD["password list"]).replace("sources:\n", "").lstrip("\n")
        path = write(self, text)
        result = self.run_quick([sys.executable, "-m", "senselink", "check", "-c", path])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn("auth_token: expected text", output)
        self.assertIn("password: expected text", output)
        self.assertEqual(leaks(output), [])
        result = self.run_quick([processes.twistd(), "-n", "--pidfile=", "senselink", "-c",
                                 path, "-p", str(free_port()), "--interface", "127.0.0.1"])
        output = result.stdout + result.stderr
        self.assertNotEqual(result.returncode, 0, output)
        self.assertIn("invalid config", output)
        self.assertEqual(leaks(output), [])


class PermissionTests(unittest.TestCase):
    """A config with a secret that other users can read logs a WARNING."""

    STATIC = "- static:\n    plugs:\n    - lamp:\n        mac: 53:75:31:00:02:01\n" \
             "        max_watts: 5\n"

    def started(self, path):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        daemon = makeService(config_module.load(path), port=0, interface="127.0.0.1",
                                  reactor=reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        return [formatEvent(e) for e in events
                if e.get("log_level") == LogLevel.warn and "readable by other users" in
                formatEvent(e)]

    def hass(self, token):
        return ("sources:\n- hass:\n    url: ws://127.0.0.1:9/api/websocket\n"
                f"    auth_token: {token}\n    plugs:\n    - heater:\n"
                "        mac: 53:75:31:00:02:02\n        entity_id: sensor.heater\n")

    def test_world_readable_token_warns(self):
        path = write(self, self.hass(HA_TOKEN), mode=0o644)
        (warning,) = self.started(path)
        self.assertIn(f"{path} holds secrets (sources[0].hass.auth_token at line 4)", warning)
        self.assertEqual(leaks(warning), [])

    def test_private_file_does_not_warn(self):
        path = write(self, self.hass(HA_TOKEN), mode=0o600)
        self.assertEqual(self.started(path), [])

    def test_secret_from_environment_does_not_warn(self):
        self.patch(os, "environ", {**os.environ, "SENSELINK_TEST_HA_TOKEN": HA_TOKEN})
        path = write(self, self.hass("${SENSELINK_TEST_HA_TOKEN}"), mode=0o644)
        self.assertEqual(self.started(path), [])

    def test_world_readable_without_secret_does_not_warn(self):
        path = write(self, "sources:\n" + self.STATIC, mode=0o644)
        self.assertEqual(self.started(path), [])

    def test_each_kind_of_secret_counts(self):
        cases = {
            "password": "sources:\n- mqtt:\n    host: 127.0.0.1\n    port: 9\n    username: u\n"
                        f"    password: {MQTT_PASSWORD}\n    plugs:\n    - m:\n"
                        "        mac: 53:75:31:00:02:03\n        power_topic: t\n",
            "token": f"web:\n  listen: tcp:0:interface=127.0.0.1\n  token: {WEB_TOKEN}\n"
                     "sources:\n" + self.STATIC,
            "Authorization": "sources:\n- http:\n    url: http://127.0.0.1:9/\n    headers:\n"
                             f"      Authorization: Bearer {HTTP_BEARER}\n    plugs:\n"
                             "    - h:\n        mac: 53:75:31:00:02:04\n        power_keypath: p\n",
        }
        for key, text in cases.items():
            path = write(self, text, mode=0o604)
            config = config_module.load(path)
            self.assertEqual(len(config.warnings), 1, key)
            self.assertIn(f"{key} at line", config.warnings[0])
            self.assertEqual(leaks(config.warnings[0]), [])
            os.chmod(path, 0o600)
            self.assertEqual(config_module.load(path).warnings, [], key)


class ReadmeTests(unittest.TestCase):
    """The README's Security section: its example is a valid config with the stated defaults."""

    def test_security_example(self):
        from senselink import guard
        from senselink.config import sections
        path = os.path.join(processes.ROOT, "README.md")
        with open(path, encoding="utf-8") as f:
            section = f.read().split("\n## Security\n", 1)[1].split("\n## ", 1)[0]
        (block,) = [b.split("\n", 1)[1] for b in section.split("```")[1::2] if b.startswith("yaml")]
        config = config_module.load_text(block + "sources: []\n", "README.md")
        rate = config.settings.rate_limit
        self.assertEqual({k: getattr(rate, k) for k in sections.DEFAULT_RATE},
                         dict(sections.DEFAULT_RATE))
        self.assertEqual([str(n) for n in rate.exempt], list(sections.DEFAULT_EXEMPT))
        for network in sections.DEFAULT_ALLOW:
            self.assertIn(f"`{network}`", section.replace("`::1`", "`::1/128`"))
        from senselink import responder
        self.assertIn(f"at most {responder.MAX_CONNECTIONS} connections", section)
        self.assertIn(f"silent for {responder.IDLE_TIMEOUT} s", section)
        self.assertIn(f"more than {responder.MAX_FRAME // 1024} KiB", section)
        self.assertIn(f"over {responder.MAX_DATAGRAM // 1024} KiB", section)
        self.assertIn(f"At most {guard.MAX_TRACKED} source addresses", section)
