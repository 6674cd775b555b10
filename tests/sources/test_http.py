"""The http source: the poller against a real twisted.web server on 127.0.0.1."""

import dataclasses
import json
import os

from twisted.internet import defer, reactor
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink import config
from senselink.plugbuilder import build_plugs
from senselink.service import makeService
from senselink.sources.http import HttpKind, HttpPollService
from senselink.sources.httpsettings import HttpPlugSettings, HttpSourceSettings
from tests.support import wait_until
from tests.httpserver import Meter, self_signed_pem, serve


def set_json(meter, document, code=200):
    meter.reply = (code, json.dumps(document).encode())


class HttpSourceTestCase(unittest.TestCase):

    def setUp(self):
        self.meter = Meter()
        self.port, self.site = serve(self, self.meter, with_site=True)
        self.url = f"http://127.0.0.1:{self.port}/meter"
        self.clock = Clock()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def make(self, plugs_yaml, source_extra="", body_limit=None):
        text = (f"sources:\n- http:\n    url: {self.url}\n{source_extra}    plugs:\n"
                + plugs_yaml)
        self.config = config.load_text(text, "test.yml")
        self.plugs = build_plugs(self.config, self.clock)
        kwargs = {} if body_limit is None else {"body_limit": body_limit}
        service = HttpPollService(self.config.sources[0], self.plugs, self.clock, reactor=reactor,
                                  **kwargs)
        return service

    def started(self, service):
        service.startService()
        self.addCleanup(self._stop, service)
        return self.settled(service)

    def _stop(self, service):
        if service.current_poll is not None or service._pool is not None:
            return service.stopService()

    def settled(self, service):
        """A Deferred firing when the poll in progress (if any) has finished."""
        if service.current_poll is None:
            return defer.succeed(None)
        done = defer.Deferred()

        def finished(result):
            done.callback(None)
            return result
        service.current_poll.addBoth(finished)
        return done.addTimeout(10, reactor)

    def tick(self, service, seconds=None):
        self.clock.advance(service.interval if seconds is None else seconds)
        return self.settled(service)

    def lines(self, level=None):
        out = []
        for event in self.events:
            if not event.get("log_namespace", "").startswith("senselink"):
                continue
            if level is not None and event["log_level"].name != level:
                continue
            out.append(formatEvent(event))
        return out

    def warnings(self):
        return self.lines("warn")

    def until(self, predicate, limit=5.0):
        """Wait (on the real reactor) until C{predicate()} is true, at most C{limit} seconds."""
        return wait_until(predicate, timeout=limit)


class ValueTests(HttpSourceTestCase):

    @defer.inlineCallbacks
    def test_whole_body_as_number(self):
        self.meter.reply = (200, b"123.5\n")
        service = self.make("    - heater: {}\n")
        yield self.started(service)
        self.assertEqual(self.plugs["heater"].watts, 123.5)
        self.assertTrue(service.connected)
        self.assertEqual(service.last_update, self.clock.seconds())
        self.assertEqual(service.kind, "http")

    @defer.inlineCallbacks
    def test_whole_body_json_number(self):
        self.meter.reply = (200, b"42")
        service = self.make("    - heater: {}\n")
        yield self.started(service)
        self.assertEqual(self.plugs["heater"].watts, 42.0)

    @defer.inlineCallbacks
    def test_json_keypaths(self):
        set_json(self.meter, {"emeters": [{"power": 40.5}], "relay": {"state": "on"},
                              "dimmer": {"level": 51, "state": "on"}, "pump": {"state": "off"}})
        service = self.make(
            "    - meter:\n        power_keypath: emeters/0/power\n"
            "    - lamp:\n        state_keypath: relay/state\n        max_watts: 60\n"
            "    - dimmer:\n        state_keypath: dimmer/state\n"
            "        attribute_keypath: dimmer/level\n        attribute_max: 255\n"
            "        max_watts: 100\n"
            "    - pump:\n        state_keypath: pump/state\n        max_watts: 500\n"
            "        off_usage: 3\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 40.5)
        self.assertEqual(self.plugs["lamp"].watts, 60.0)
        self.assertTrue(self.plugs["lamp"].on)
        self.assertAlmostEqual(self.plugs["dimmer"].watts, 20.0)
        self.assertEqual(self.plugs["pump"].watts, 3.0)
        self.assertFalse(self.plugs["pump"].on)
        self.assertEqual(self.warnings(), [])

    @defer.inlineCallbacks
    def test_values_follow_the_body(self):
        set_json(self.meter, {"power": 10})
        service = self.make("    - meter:\n        power_keypath: power\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 10.0)
        set_json(self.meter, {"power": 25.25})
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 25.25)
        self.assertEqual(len(self.meter.requests), 2)

    @defer.inlineCallbacks
    def test_server_closing_idle_connections_is_not_a_failure(self):
        set_json(self.meter, {"power": 1})
        service = self.make("    - meter:\n        power_keypath: power\n")
        yield self.started(service)
        for round in range(2, 5):
            # The server drops its idle keep-alive connections just before the next poll.
            for protocol in self.site.protocols:
                transport = getattr(protocol, "transport", None)
                if transport is not None and transport.connected:
                    transport.loseConnection()
            set_json(self.meter, {"power": round})
            yield self.tick(service)
            self.assertEqual(self.plugs["meter"].watts, float(round))
        self.assertEqual(self.warnings(), [])
        self.assertEqual(service.failures, 0)

    @defer.inlineCallbacks
    def test_headers_are_sent_and_never_logged(self):
        os.environ["SENSELINK_TEST_METER_TOKEN"] = "s3cret-meter-token"
        self.addCleanup(os.environ.pop, "SENSELINK_TEST_METER_TOKEN")
        self.meter.reply = (500, b"no")
        self.url = f"http://user:pw-in-url@127.0.0.1:{self.port}/meter?apikey=query-secret"
        service = self.make("    - meter: {}\n", source_extra=(
            "    headers:\n      X-Api-Key: ${SENSELINK_TEST_METER_TOKEN}\n"))
        yield self.started(service)
        headers = self.meter.requests[0]["headers"]
        self.assertEqual(headers[b"X-Api-Key"], [b"s3cret-meter-token"])
        self.assertEqual(headers[b"Authorization"], [b"Basic dXNlcjpwdy1pbi11cmw="])
        self.assertEqual(self.meter.requests[0]["uri"], b"/meter?apikey=query-secret")
        self.assertEqual(service.label, f"http://127.0.0.1:{self.port}/meter")
        text = "\n".join(self.lines())
        self.assertIn("HTTP 500", text)
        for secret in ("s3cret-meter-token", "pw-in-url", "query-secret"):
            self.assertNotIn(secret, text)


class FailureTests(HttpSourceTestCase):

    @defer.inlineCallbacks
    def test_server_errors_keep_values_log_once_and_recover(self):
        set_json(self.meter, {"power": 50})
        service = self.make("    - meter:\n        power_keypath: power\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 50.0)
        self.meter.reply = (500, b"Internal Server Error")
        yield self.tick(service)
        yield self.tick(service)
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 50.0)
        self.assertFalse(service.connected)
        self.assertEqual(service.failures, 3)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("HTTP 500", warnings[0])
        self.assertIn(service.label, warnings[0])
        set_json(self.meter, {"power": 70})
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 70.0)
        self.assertTrue(service.connected)
        self.assertTrue(any("works again" in line for line in self.lines("info")))
        # A new streak is logged again.
        self.meter.reply = (404, b"")
        yield self.tick(service)
        self.assertEqual(len(self.warnings()), 2)
        self.assertIn("HTTP 404", self.warnings()[1])

    @defer.inlineCallbacks
    def test_slow_reply_times_out(self):
        set_json(self.meter, {"power": 12})
        service = self.make("    - meter:\n        power_keypath: power\n",
                            source_extra="    timeout: 3\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 12.0)
        self.meter.hold = True
        set_json(self.meter, {"power": 99})
        self.clock.advance(service.interval)
        yield self.until(lambda: self.meter.held)
        self.assertIsNotNone(service.current_poll)
        self.clock.advance(2.9)
        self.assertIsNotNone(service.current_poll)
        done = self.settled(service)
        self.clock.advance(0.2)
        yield done
        self.assertIsNone(service.current_poll)
        self.assertEqual(self.plugs["meter"].watts, 12.0)
        self.assertFalse(service.connected)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1)
        self.assertIn("within 3 s", warnings[0])
        # The server sees the connection go away.
        yield self.until(lambda: all(r._disconnected for r in self.meter.held))
        self.meter.hold = False
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 99.0)

    @defer.inlineCallbacks
    def test_body_that_stalls_times_out(self):
        set_json(self.meter, {"power": 12})
        service = self.make("    - meter:\n        power_keypath: power\n")
        yield self.started(service)
        self.meter.stall_body = True
        self.clock.advance(service.interval)
        yield self.until(lambda: self.meter.held)
        done = self.settled(service)
        self.clock.advance(service.timeout)
        yield done
        self.assertEqual(self.plugs["meter"].watts, 12.0)
        self.assertIn("no complete reply within 5 s", self.warnings()[0])
        yield self.until(lambda: all(r._disconnected for r in self.meter.held))

    @defer.inlineCallbacks
    def test_invalid_json_keeps_values(self):
        set_json(self.meter, {"power": 5})
        service = self.make("    - meter:\n        power_keypath: power\n"
                            "    - whole: {}\n")
        self.meter.reply = (200, b"17")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 0.0)   # 17 has no key 'power'
        self.assertEqual(self.plugs["whole"].watts, 17.0)
        set_json(self.meter, {"power": 5})
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 5.0)
        self.events.clear()
        self.meter.reply = (200, b'{"power": 6')
        yield self.tick(service)
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 5.0)
        json_warnings = [w for w in self.warnings() if "not valid JSON" in w]
        self.assertEqual(len(json_warnings), 1, self.warnings())
        set_json(self.meter, {"power": 6})
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 6.0)
        self.assertTrue(any("valid JSON again" in line for line in self.lines("info")))

    @defer.inlineCallbacks
    def test_missing_key_logged_once_per_plug(self):
        set_json(self.meter, {"a": 1, "b": 2})
        service = self.make("    - a:\n        power_keypath: a\n"
                            "    - b:\n        power_keypath: b\n")
        yield self.started(service)
        set_json(self.meter, {"a": 3})
        yield self.tick(service)
        yield self.tick(service)
        self.assertEqual(self.plugs["a"].watts, 3.0)
        self.assertEqual(self.plugs["b"].watts, 2.0)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("b", warnings[0])
        self.assertIn("power_keypath 'b'", warnings[0])
        set_json(self.meter, {"a": 3, "b": "unavailable"})
        yield self.tick(service)
        self.assertEqual(len(self.warnings()), 1)
        self.assertEqual(self.plugs["b"].watts, 2.0)
        set_json(self.meter, {"a": 3, "b": 4})
        yield self.tick(service)
        self.assertEqual(self.plugs["b"].watts, 4.0)
        self.assertTrue(any("reads" in line and "again" in line for line in self.lines("info")))

    @defer.inlineCallbacks
    def test_connection_refused(self):
        listening = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        closed_port = listening.getHost().port
        yield listening.stopListening()
        self.url = f"http://127.0.0.1:{closed_port}/"
        service = self.make("    - meter:\n        max_watts: 1\n")
        yield self.started(service)
        yield self.tick(service)
        self.assertFalse(service.connected)
        self.assertEqual(service.failures, 2)
        warnings = self.warnings()
        self.assertEqual(len(warnings), 1)
        self.assertIn("refused", warnings[0].lower())
        # Connection attempts themselves are not logged (one line per poll otherwise).
        self.assertEqual([e for e in self.events
                          if "HTTP11ClientFactory" in (formatEvent(e) or "")], [])

    @defer.inlineCallbacks
    def test_oversized_body_is_refused(self):
        self.meter.reply = (200, b"1" * 5000)
        service = self.make("    - meter: {}\n", body_limit=1000)
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 0.0)
        self.assertFalse(service.connected)
        self.assertIn("larger than 1000 bytes", self.warnings()[0])
        self.meter.reply = (200, b"8")
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 8.0)

    @defer.inlineCallbacks
    def test_timeout_duration_reverts_to_off_usage(self):
        set_json(self.meter, {"power": 80})
        service = self.make("    - meter:\n        power_keypath: power\n"
                            "        timeout_duration: 25\n        off_usage: 1\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 80.0)
        self.meter.reply = (503, b"")
        for _ in range(2):
            yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 80.0)   # 20 s without a value
        yield self.tick(service)
        self.assertEqual(self.plugs["meter"].watts, 1.0)    # 30 s > timeout_duration 25 s
        self.assertFalse(self.plugs["meter"].on)

class ScheduleTests(HttpSourceTestCase):

    @defer.inlineCallbacks
    def test_one_request_per_interval_for_many_plugs(self):
        set_json(self.meter, {f"p{i}": i for i in range(30)})
        plugs = "".join(f"    - p{i}:\n        power_keypath: p{i}\n" for i in range(30))
        service = self.make(plugs)
        yield self.started(service)
        self.assertEqual(len(self.meter.requests), 1)
        yield self.tick(service)
        yield self.tick(service)
        self.assertEqual(len(self.meter.requests), 3)
        self.assertEqual([self.plugs[f"p{i}"].watts for i in range(30)],
                         [float(i) for i in range(30)])
        # Half an interval later: no request.
        yield self.tick(service, service.interval / 2)
        self.assertEqual(len(self.meter.requests), 3)
        self.assertEqual(service.polls, 3)

    @defer.inlineCallbacks
    def test_polls_never_overlap(self):
        self.meter.hold = True
        set_json(self.meter, {"power": 33})
        service = self.make("    - meter:\n        power_keypath: power\n",
                            source_extra="    interval: 2\n    timeout: 30\n")
        service.startService()
        self.addCleanup(self._stop, service)
        yield self.until(lambda: self.meter.held)
        for _ in range(5):
            self.clock.advance(2)
        self.assertEqual(service.skipped, 5)
        self.assertEqual(service.polls, 1)
        # Give the reactor a moment to deliver any (wrong) extra request.
        yield self.until(lambda: True)
        self.assertEqual(len(self.meter.requests), 1)
        done = self.settled(service)
        self.meter.release()
        yield done
        self.assertEqual(self.plugs["meter"].watts, 33.0)
        self.meter.hold = False
        yield self.tick(service)
        self.assertEqual(len(self.meter.requests), 2)
        self.assertEqual(service.skipped, 5)

    @defer.inlineCallbacks
    def test_stop_cancels_the_running_poll(self):
        self.meter.hold = True
        service = self.make("    - meter: {}\n")
        service.startService()
        yield self.until(lambda: self.meter.held)
        yield service.stopService()
        self.assertIsNone(service.current_poll)
        self.assertFalse(service.connected)
        self.assertEqual(service.failures, 0)
        self.assertEqual(self.warnings(), [])   # stopping is not a failure of the source
        yield self.until(lambda: all(r._disconnected for r in self.meter.held))


class ConfigTests(unittest.TestCase):

    def problems(self, text):
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text(text, "c.yml")
        return caught.exception.problems

    def test_defaults(self):
        cfg = config.load_text("sources:\n- http:\n    url: http://127.0.0.1/x\n"
                               "    plugs:\n    - a: {}\n", "c.yml")
        settings = cfg.sources[0].settings
        self.assertEqual((settings.interval, settings.timeout, settings.verify_tls,
                          settings.headers, settings.ca_file), (10.0, 5.0, True, None, None))

    def test_settings_are_frozen_with_the_declared_defaults(self):
        cfg = config.load_text("sources:\n- http:\n    url: http://127.0.0.1/x\n"
                               "    plugs:\n    - a: {}\n", "c.yml")
        source, plug = cfg.sources[0], cfg.plugs["a"]
        self.assertIsInstance(source.settings, HttpSourceSettings)
        self.assertIsInstance(plug.settings, HttpPlugSettings)
        self.assertTrue(dataclasses.is_dataclass(plug.settings))
        s = plug.settings
        self.assertEqual((s.on_state_value, s.off_state_value, s.min_watts, s.max_watts,
                          s.attribute_min, s.state_case_sensitive),
                         ("on", "off", 0.0, 0.0, 0.0, True))
        self.assertEqual((s.power_keypath, s.power_keypaths, s.current_keypath,
                          s.voltage_keypath, s.state_keypath, s.attribute_keypath,
                          s.timeout_duration, s.off_usage),
                         (None,) * 8)
        self.assertEqual(plug.max_plug_watts, 100000.0)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            source.settings.interval = 1.0
        with self.assertRaises(dataclasses.FrozenInstanceError):
            plug.settings.state_keypath = "state"

    def test_the_models_get_the_configs_ceiling_and_the_kinds_on_state(self):
        cfg = config.load_text("max_plug_watts: 1000\nsources:\n- http:\n"
                               "    url: http://127.0.0.1/x\n"
                               "    plugs:\n    - a: {state_keypath: s, off_usage: 2}\n", "c.yml")
        service = HttpPollService(cfg.sources[0], build_plugs(cfg, Clock()), Clock())
        model = service.feeds[0].model
        self.assertEqual((model.max_plug_watts, model.on_state_value, model.off_usage),
                         (1000.0, "on", 2.0))
        self.assertEqual(HttpKind().initial(cfg.plugs["a"]), (2.0, None))

    def test_written_keys_reach_the_settings(self):
        cfg = config.load_text("sources:\n- http:\n    url: http://127.0.0.1/x\n"
                               "    interval: 2.5\n    headers: {X-Key: v}\n"
                               "    plugs:\n    - a: {state_keypath: s/state, on_state_value: ja,"
                               " max_watts: 60, timeout_duration: 30}\n", "c.yml")
        source, plug = cfg.sources[0].settings, cfg.plugs["a"].settings
        self.assertEqual((source.interval, source.headers), (2.5, {"X-Key": "v"}))
        self.assertEqual((plug.state_keypath, plug.on_state_value, plug.max_watts,
                          plug.timeout_duration), ("s/state", "ja", 60.0, 30.0))

    def test_bad_url_and_interval(self):
        problems = self.problems("sources:\n- http:\n    url: ftp://127.0.0.1/x\n"
                                 "    interval: 0\n    plugs:\n    - a: {}\n")
        self.assertEqual(len(problems), 2, problems)
        self.assertTrue(problems[0].startswith("c.yml:3: sources[0].http.url: expected an http"))
        self.assertTrue(problems[1].startswith("c.yml:4: sources[0].http.interval:"))

    def test_missing_url(self):
        problems = self.problems("sources:\n- http:\n    plugs:\n    - a: {}\n")
        self.assertIn("missing required key 'url'", problems[0])

    def test_plug_cross_checks(self):
        problems = self.problems(
            "sources:\n- http:\n    url: http://127.0.0.1/\n    plugs:\n"
            "    - a:\n        attribute_keypath: x\n"
            "    - b:\n        power_keypath: p\n        attribute_keypath: x\n"
            "        attribute_max: 3\n"
            "    - c:\n        power_keypth: p\n")
        text = "\n".join(problems)
        self.assertIn("c.yml:5: sources[0].http.plugs[0].a: attribute_keypath needs attribute_max",
                      text)
        self.assertIn("power_keypath and attribute_keypath exclude each other", text)
        self.assertIn("did you mean 'power_keypath'?", text)

    def test_headers_must_be_a_mapping(self):
        problems = self.problems("sources:\n- http:\n    url: http://127.0.0.1/\n"
                                 "    headers: [a]\n    plugs:\n    - a: {}\n")
        self.assertIn("c.yml:4: sources[0].http.headers: expected a mapping", problems[0])


class ServiceTreeTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_poller_is_a_child_of_the_daemon(self):
        meter = Meter()
        meter.reply = (200, b'{"power": 321}')
        port = serve(self, meter)
        cfg = config.load_text(f"sources:\n- http:\n    url: http://127.0.0.1:{port}/\n"
                               "    plugs:\n    - meter:\n        power_keypath: power\n"
                               "        mac: 53:75:31:00:00:01\n", "c.yml")
        service = makeService(cfg, port=0, interface="127.0.0.1")
        [poller] = service.sources
        self.assertIs(poller.parent.parent, service)
        service.startService()
        try:
            if poller.current_poll is not None:
                done = defer.Deferred()
                poller.current_poll.addBoth(lambda r: done.callback(None) or r)
                yield done.addTimeout(10, reactor)
            self.assertEqual(service.plugs["meter"].watts, 321.0)
            self.assertTrue(poller.connected)
        finally:
            yield service.stopService()
        self.assertFalse(poller.current_poll)


class TLSTests(HttpSourceTestCase):
    """https:// URLs against a real TLS listener with a self-signed certificate."""

    def setUp(self):
        super().setUp()
        from twisted.internet import ssl
        directory = self.mktemp()
        os.makedirs(directory)
        self.ca_path, cert_pem, key_pem = self_signed_pem(directory)
        options = ssl.PrivateCertificate.loadPEM(cert_pem + key_pem).options()
        from tests.httpserver import TrackingSite
        site = TrackingSite(self.meter)
        tls_port = reactor.listenSSL(0, site, options, interface="127.0.0.1")

        def cleanup():
            stopped = defer.maybeDeferred(tls_port.stopListening)
            for protocol in site.protocols:
                transport = getattr(protocol, "transport", None)
                if transport is not None and transport.connected:
                    transport.abortConnection()
            return defer.gatherResults([stopped] + site.lost).addTimeout(5, reactor)
        self.addCleanup(cleanup)
        self.url = f"https://127.0.0.1:{tls_port.getHost().port}/meter"
        set_json(self.meter, {"power": 64})

    @defer.inlineCallbacks
    def test_unknown_certificate_is_refused_by_default(self):
        service = self.make("    - meter:\n        power_keypath: power\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 0.0)
        self.assertFalse(service.connected)
        [warning] = self.warnings()
        self.assertIn("certificate verify failed", warning)
        self.assertEqual(self.meter.requests, [])

    @defer.inlineCallbacks
    def test_ca_file(self):
        service = self.make("    - meter:\n        power_keypath: power\n",
                            source_extra=f"    ca_file: {self.ca_path}\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 64.0)
        self.assertTrue(service.connected)

    @defer.inlineCallbacks
    def test_verify_tls_false(self):
        service = self.make("    - meter:\n        power_keypath: power\n",
                            source_extra="    verify_tls: false\n")
        yield self.started(service)
        self.assertEqual(self.plugs["meter"].watts, 64.0)
        yield self.tick(service)
        self.assertEqual(len(self.meter.requests), 2)


class CertificateConfigTests(unittest.TestCase):

    def test_ca_file_must_hold_certificates(self):
        directory = self.mktemp()
        os.makedirs(directory)
        empty = os.path.join(directory, "empty.pem")
        with open(empty, "w") as f:
            f.write("not a certificate\n")
        text = (f"sources:\n- http:\n    url: https://127.0.0.1/\n    ca_file: {empty}\n"
                "    plugs:\n    - a: {}\n")
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text(text, "c.yml")
        self.assertIn(f"c.yml:4: sources[0].http.ca_file: ca_file {empty!r} holds no PEM "
                      f"certificate", str(caught.exception))
        missing = os.path.join(directory, "missing.pem")
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text(text.replace(empty, missing), "c.yml")
        self.assertIn(f"cannot read ca_file {missing!r}: No such file", str(caught.exception))
        ca_path, _, _ = self_signed_pem(directory)
        cfg = config.load_text(text.replace(empty, ca_path), "c.yml")
        self.assertEqual(cfg.sources[0].settings.ca_file, ca_path)
        with self.assertRaises(config.ConfigError) as caught:
            config.load_text(text.replace(empty, ca_path).replace(
                "    plugs:", "    verify_tls: false\n    plugs:"), "c.yml")
        self.assertIn("c.yml:2: sources[0].http.ca_file: ca_file has no effect with "
                      "verify_tls: false", str(caught.exception))

    def test_basic_auth_from_url_yields_to_a_configured_header(self):
        cfg = config.load_text("sources:\n- http:\n    url: http://u:p@127.0.0.1/\n"
                               "    headers: {authorization: Bearer x}\n"
                               "    plugs:\n    - a: {}\n", "c.yml")
        service = HttpPollService(cfg.sources[0], build_plugs(cfg, Clock()), Clock())
        self.assertEqual(service.url, "http://127.0.0.1/")
        self.assertNotIn("Authorization", service.headers)
        self.assertEqual(service.headers["authorization"], [b"Bearer x"])
