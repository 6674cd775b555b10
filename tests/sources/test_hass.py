"""The Home Assistant source against a real Autobahn websocket server speaking HA's protocol."""

import base64
import dataclasses
import hashlib
import json
import os
import struct
import textwrap

import txaio
from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.testing import StringTransport
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial import unittest
from zope.interface import implementer

from senselink.config import ConfigError, load_text
from senselink.plugbuilder import build_plugs
from senselink.sources.hass import HassService
from senselink.sources.hass.cache import apply_entities_event, apply_state_changed
from senselink.sources.hass.kind import HassPlugSettings, HassSourceSettings, normalise_url
from senselink.sources.hass.service import supervisor_url

from tests import processes
from tests.hass_server import FakeHomeAssistant, State, start_hass_source, state_diff

TOKEN = "eyJhbGciOiJIUzI1NiJ9.test-token-do-not-log.c2lnbmF0dXJl"


@defer.inlineCallbacks
def until(predicate, timeout=5.0, what="condition"):
    """Wait (on the real reactor) until C{predicate()} is true; fail after C{timeout} s."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        yield task.deferLater(reactor, 0.005, lambda: None)


def config_text(url, plugs, source_extra=""):
    body = textwrap.indent(textwrap.dedent(plugs).strip("\n"), " " * 8)
    extra = textwrap.indent(textwrap.dedent(source_extra).strip("\n"), " " * 6)
    return (f"sources:\n  - hass:\n      url: {url}\n"
            + (f"{extra}\n" if source_extra.strip() else f"      auth_token: {TOKEN}\n")
            + f"      plugs:\n{body}\n")


class LogCapture:
    def __init__(self, testcase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testcase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def texts(self, level=None):
        return [formatEvent(e) for e in self.events
                if level is None or e.get("log_level") == level]


class HassTestCase(unittest.TestCase):
    """Starts a fake Home Assistant and a hass source service on a task.Clock."""

    entities_supported = True

    def setUp(self):
        self.home = FakeHomeAssistant(TOKEN, supports_subscribe_entities=self.entities_supported)
        self.home.listen()
        self.addCleanup(self._stop_home)
        self.clock = task.Clock()
        self.service = None

    def _stop_home(self):
        if self.home.port is not None:
            return self.home.stop()

    def start(self, plugs, source_extra="", url=None, **kwargs):
        text = config_text(url or self.home.url, plugs, source_extra)
        self.plugs, self.service = start_hass_source(self, text, self.clock, **kwargs)
        return self.service

    def ready(self, n=1):
        return until(lambda: self.service.sessions >= n and self.service.session is not None
                     and self.service.session.ready, what="the subscription")

    def watts(self, plug_id):
        return self.plugs[plug_id].watts

    def settle(self, plug_id, watts):
        return until(lambda: self.watts(plug_id) == watts, what=f"{plug_id} at {watts} W "
                     f"(now {self.watts(plug_id)} W)")

    def roundtrip(self):
        """Wait until everything the server sent so far has been processed."""
        (server,) = self.home.connections
        session = self.service.session
        return until(lambda: session.messages >= server.sent, what="the messages sent so far")


DIMMER = """
- Lamp:
    entity_id: light.desk_lamp
    off_usage: 1
    min_watts: 2
    max_watts: 42
    attribute: brightness
    attribute_min: 0
    attribute_max: 255
"""


class SubscribeEntitiesTests(HassTestCase):

    @defer.inlineCallbacks
    def test_dimmer_scaling_and_clamping(self):
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255, "friendly_name": "Desk"})
        self.start(DIMMER)
        yield self.ready()
        self.assertEqual(self.watts("Lamp"), 42.0)
        self.home.set_state("light.desk_lamp", "on", {"brightness": 51, "friendly_name": "Desk"})
        yield self.settle("Lamp", 2 + 40 * 51 / 255)
        self.home.set_state("light.desk_lamp", "on", {"brightness": 400, "friendly_name": "Desk"})
        yield self.settle("Lamp", 42.0)
        self.home.set_state("light.desk_lamp", "on", {"brightness": -5, "friendly_name": "Desk"})
        yield self.settle("Lamp", 2.0)
        self.home.set_state("light.desk_lamp", "off", {"brightness": None, "friendly_name": "Desk"})
        yield self.settle("Lamp", 1.0)
        self.assertFalse(self.plugs["Lamp"].on)

    @defer.inlineCallbacks
    def test_subscribes_to_exactly_the_configured_entities(self):
        self.home.set_state("sensor.other", "99")
        self.start(DIMMER + """
- Heater:
    entity_id: sensor.heater_power
- Heater2:
    entity_id: sensor.heater_power
""")
        yield self.ready()
        sub = [c for c in self.home.commands if c["type"] == "subscribe_entities"]
        self.assertEqual(len(sub), 1)
        self.assertEqual(sorted(sub[0]["entity_ids"]), ["light.desk_lamp", "sensor.heater_power"])
        self.assertEqual(sub[0]["id"], 1)
        self.assertEqual(len(self.home.connections), 1)

    @defer.inlineCallbacks
    def test_power_curve(self):
        self.home.set_state("light.desk_lamp", "on", {"brightness": 0})
        self.start("""
- Lamp:
    entity_id: light.desk_lamp
    attribute: brightness
    power_curve: [[0, 3], [100, 10], [255, 50]]
""")
        yield self.ready()
        self.assertEqual(self.watts("Lamp"), 3.0)
        self.home.set_state("light.desk_lamp", "on", {"brightness": 50})
        yield self.settle("Lamp", 6.5)
        self.home.set_state("light.desk_lamp", "on", {"brightness": 300})
        yield self.settle("Lamp", 50.0)

    @defer.inlineCallbacks
    def test_power_sensor_state(self):
        self.home.set_state("sensor.heater_power", "0.0", {"unit_of_measurement": "W"})
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 0.0)
        # A state change with a context dict (user_id changed), as captured.
        self.home.set_state("sensor.heater_power", "1500.5", {"unit_of_measurement": "W"},
                            user_id="117fa03aaf9f4618931dd483d9cc8ff3")
        yield self.settle("Heater", 1500.5)
        self.assertTrue(self.plugs["Heater"].on)

    @defer.inlineCallbacks
    def test_power_keypath(self):
        self.home.set_state("switch.washer", "on", {"current_power_w": 450.5, "voltage": 230})
        self.start("""
- Washer:
    entity_id: switch.washer
    power_keypath: attributes/current_power_w
    off_usage: 0.5
""")
        yield self.ready()
        self.assertEqual(self.watts("Washer"), 450.5)
        self.home.set_state("switch.washer", "on", {"current_power_w": 12, "voltage": 230})
        yield self.settle("Washer", 12.0)
        self.home.set_state("switch.washer", "off", {"current_power_w": 0, "voltage": 230})
        yield self.settle("Washer", 0.5)

    @defer.inlineCallbacks
    def test_binary_switch_with_vampire_off_usage(self):
        self.home.set_state("switch.tv", "off", {"friendly_name": "TV"})
        self.start("""
- TV:
    entity_id: switch.tv
    on_state_value: "on"
    off_usage: 3.5
    max_watts: 120
""")
        yield self.ready()
        self.assertEqual(self.watts("TV"), 3.5)
        self.assertFalse(self.plugs["TV"].on)
        self.home.set_state("switch.tv", "on", {"friendly_name": "TV"})
        yield self.settle("TV", 120.0)
        self.assertTrue(self.plugs["TV"].on)
        self.home.set_state("switch.tv", "off", {"friendly_name": "TV"})
        yield self.settle("TV", 3.5)

    @defer.inlineCallbacks
    def test_json_attribute_keypath_and_state_keypath(self):
        self.home.set_state("sensor.fan", "running", {"data": {"levels": [7, 80]}, "mode": "go"})
        self.start("""
- Fan:
    entity_id: sensor.fan
    state_keypath: attributes/mode
    off_state_value: stopped
    attribute_keypath: attributes/data/levels/1
    attribute_max: 100
    max_watts: 60
""")
        yield self.ready()
        self.assertEqual(self.watts("Fan"), 48.0)
        self.home.set_state("sensor.fan", "running", {"data": {"levels": [7, 80]}, "mode": "stopped"})
        yield self.settle("Fan", 0.0)

    @defer.inlineCallbacks
    def test_unavailable_and_unknown_keep_the_last_value_and_log_once(self):
        logs = LogCapture(self)
        self.home.set_state("sensor.heater_power", "800", {"unit_of_measurement": "W"})
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 800.0)
        for value in ("unavailable", "unknown", "unavailable", "not a number"):
            self.home.set_state("sensor.heater_power", value, {"unit_of_measurement": "W"})
        yield self.roundtrip()
        self.assertEqual(self.watts("Heater"), 800.0)
        warnings = [t for t in logs.texts() if "Cannot read" in t]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("sensor.heater_power", warnings[0])
        self.assertIn("Heater", warnings[0])
        self.home.set_state("sensor.heater_power", "5", {"unit_of_measurement": "W"})
        yield self.settle("Heater", 5.0)
        self.assertEqual(len([t for t in logs.texts() if "readable again" in t]), 1)
        self.home.set_state("sensor.heater_power", "unknown", {"unit_of_measurement": "W"})
        yield self.roundtrip()
        self.assertEqual(len([t for t in logs.texts() if "Cannot read" in t]), 2)
        self.assertEqual(self.watts("Heater"), 5.0)

    @defer.inlineCallbacks
    def test_missing_attribute_keeps_the_last_value(self):
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255})
        self.start(DIMMER)
        yield self.ready()
        self.assertEqual(self.watts("Lamp"), 42.0)
        # REST replaces the attribute map: brightness goes under "-".
        self.home.set_state("light.desk_lamp", "on", {"friendly_name": "Desk"})
        yield self.roundtrip()
        self.assertEqual(self.watts("Lamp"), 42.0)
        self.assertNotIn("brightness", self.service.session.cache["light.desk_lamp"]["attributes"])

    @defer.inlineCallbacks
    def test_timeout_duration(self):
        self.home.set_state("sensor.heater_power", "100")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
    off_usage: 2
    timeout_duration: 120
""", ping_interval=1000)
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 100.0)
        self.clock.advance(119)
        self.assertEqual(self.watts("Heater"), 100.0)
        self.home.set_state("sensor.heater_power", "50")
        yield self.settle("Heater", 50.0)
        self.clock.advance(119)
        self.assertEqual(self.watts("Heater"), 50.0)
        self.clock.advance(2)
        self.assertEqual(self.watts("Heater"), 2.0)
        self.assertFalse(self.plugs["Heater"].on)

    @defer.inlineCallbacks
    def test_two_plugs_on_one_entity(self):
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255})
        self.start(DIMMER + """
- LampSwitch:
    entity_id: light.desk_lamp
    on_state_value: "on"
    max_watts: 7
""")
        yield self.ready()
        self.assertEqual((self.watts("Lamp"), self.watts("LampSwitch")), (42.0, 7.0))
        self.home.set_state("light.desk_lamp", "off", {"brightness": None})
        yield self.settle("LampSwitch", 0.0)
        self.assertEqual(self.watts("Lamp"), 1.0)
        logs = LogCapture(self)
        self.home.set_state("light.desk_lamp", "unavailable", {})
        self.home.set_state("light.desk_lamp", "unavailable", {"restored": True})
        yield self.roundtrip()
        (line,) = [t for t in logs.texts() if "Cannot read" in t]   # once per entity
        self.assertIn("Lamp:", line)
        self.assertIn("LampSwitch:", line)
        self.assertEqual((self.watts("Lamp"), self.watts("LampSwitch")), (1.0, 0.0))
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255})
        yield self.settle("Lamp", 42.0)
        self.assertEqual(self.watts("LampSwitch"), 7.0)

    @defer.inlineCallbacks
    def test_entity_removed_and_added_again(self):
        logs = LogCapture(self)
        self.home.set_state("sensor.plug_rest", "12.5", {"unit_of_measurement": "W"})
        self.start("""
- Rest:
    entity_id: sensor.plug_rest
- Later:
    entity_id: sensor.created_later
""")
        yield self.ready()
        self.assertEqual(self.watts("Rest"), 12.5)
        self.assertEqual(len([t for t in logs.texts() if "no entity sensor.created_later" in t]), 1)
        self.home.set_state("sensor.created_later", "7", {"unit_of_measurement": "W"})
        yield self.settle("Later", 7.0)
        self.home.remove_state("sensor.plug_rest")
        yield self.roundtrip()
        self.assertNotIn("sensor.plug_rest", self.service.session.cache)
        self.assertEqual(self.watts("Rest"), 12.5)
        self.assertEqual(len([t for t in logs.texts() if "sensor.plug_rest is gone" in t]), 1)
        self.home.set_state("sensor.plug_rest", "13")
        yield self.settle("Rest", 13.0)

    @defer.inlineCallbacks
    def test_ids_increase_and_replies_are_matched_by_id(self):
        self.home.set_state("sensor.heater_power", "1")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", ping_interval=5, ping_timeout=3)
        yield self.ready()
        for _ in range(3):
            self.clock.advance(5)
            yield until(lambda: not self.service.session.pending, what="a pong")
        ids = [c["id"] for c in self.home.commands]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertEqual([c["type"] for c in self.home.commands],
                         ["subscribe_entities", "ping", "ping", "ping"])
        self.assertEqual(len(self.home.connections), 1)

    @defer.inlineCallbacks
    def test_missing_pong_reconnects(self):
        self.home.set_state("sensor.heater_power", "1")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", ping_interval=5, ping_timeout=3)
        yield self.ready()
        self.home.answer_pings = False
        self.clock.advance(5)
        yield until(lambda: any(c["type"] == "ping" for c in self.home.commands), what="a ping")
        self.home.set_state("sensor.heater_power", "2")
        yield self.settle("Heater", 2.0)
        self.clock.advance(3)
        yield until(lambda: len(self.home.closed) == 1, what="the client to hang up")
        self.assertFalse(self.service.connected)
        self.home.answer_pings = True
        self.home.set_state("sensor.heater_power", "3")
        self.assertEqual(self.watts("Heater"), 2.0)
        self.clock.advance(self.service.max_delay)
        yield self.ready(2)
        yield self.settle("Heater", 3.0)

    @defer.inlineCallbacks
    def test_server_restart_reconnects_and_refreshes(self):
        logs = LogCapture(self)
        self.home.set_state("sensor.plug_rest", "12.5")
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255})
        self.start(DIMMER + """
- Rest:
    entity_id: sensor.plug_rest
""")
        self.service.readiness.settle = 0.0     # the session counts as long-lived
        yield self.ready()
        self.assertEqual((self.watts("Lamp"), self.watts("Rest")), (42.0, 12.5))
        port = self.home.port.getHost().port
        yield self.home.stop()          # no close frame, as Home Assistant on SIGTERM
        yield until(lambda: not self.service.connected, what="the disconnect")
        self.assertTrue([t for t in logs.texts() if "Disconnected from Home Assistant" in t])
        self.assertEqual((self.watts("Lamp"), self.watts("Rest")), (42.0, 12.5))
        # A retry is scheduled on the clock, short: the session had been working.
        (retry,) = self.clock.getDelayedCalls()
        self.assertEqual(retry.getTime() - self.clock.seconds(), 1.5)    # 1 s + 0.5 s jitter
        # Home Assistant comes back on the same port; REST-only states are gone.
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen(port)
        self.home.set_state("light.desk_lamp", "off", {"brightness": None})
        self.clock.advance(1.5)
        yield self.ready(2)
        yield self.settle("Lamp", 1.0)
        self.assertEqual(self.watts("Rest"), 12.5)
        self.assertEqual(self.home.commands[0]["id"], 1)   # ids start over per connection

    @defer.inlineCallbacks
    def test_bad_token_backs_off_slowly_and_never_logs_the_token(self):
        logs = LogCapture(self)
        txaio.set_global_log_level("debug")
        self.addCleanup(txaio.set_global_log_level, "info")
        self.home.token = "another-token"
        self.start(DIMMER)
        yield until(lambda: len(self.home.closed) == 1, what="the rejected connection to end")
        self.assertEqual(self.home.auth_messages, [{"type": "auth", "access_token": TOKEN}])
        errors = logs.texts("error") + [formatEvent(e) for e in logs.events
                                        if e.get("log_level") is not None
                                        and e["log_level"].name == "error"]
        self.assertTrue(any(self.home.url in t and "rejected the access token" in t
                            for t in errors), errors)
        self.assertEqual(self.service.last_error,
                         f"authentication rejected by {self.service.label}")
        (retry,) = self.clock.getDelayedCalls()
        delay = retry.getTime() - self.clock.seconds()
        self.assertEqual(delay, self.service.max_delay + 0.5)     # the slow end, jittered
        self.clock.advance(delay - 1)
        self.assertEqual(len(self.home.auth_messages), 1)
        self.clock.advance(1)
        yield until(lambda: len(self.home.closed) == 2, what="the second rejection")
        (retry,) = self.clock.getDelayedCalls()
        self.assertEqual(retry.getTime() - self.clock.seconds(), self.service.max_delay + 0.5)
        rejected = [e for e in logs.events if "rejected the access token" in formatEvent(e)]
        self.assertEqual(len(rejected), 1)
        # With the right token the next attempt works.
        self.home.token = TOKEN
        self.clock.advance(self.service.max_delay + 1)
        yield self.ready()
        self.assertIsNone(self.service.last_error)
        for event in logs.events:
            self.assertNotIn(TOKEN, formatEvent(event))
            self.assertNotIn(TOKEN, repr(event))
        self.assertTrue(any(e.get("log_level") is not None and e["log_level"].name == "debug"
                            for e in logs.events))

    @defer.inlineCallbacks
    def test_token_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(TOKEN + "\n")
        self.home.set_state("sensor.heater_power", "9")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", source_extra=f"auth_token_file: {path}")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 9.0)

    @defer.inlineCallbacks
    def test_http_url_is_normalised(self):
        self.home.set_state("sensor.heater_power", "9")
        url = self.home.url.replace("ws://", "http://").replace("/api/websocket", "")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", url=url)
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 9.0)
        self.assertEqual(self.service.label, self.home.url)

    @defer.inlineCallbacks
    def test_stop_keeps_values_and_cleans_up(self):
        self.home.set_state("sensor.heater_power", "9")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
    timeout_duration: 30
""")
        yield self.ready()
        yield self.service.stopService()
        yield until(lambda: not self.home.connections, what="the connection to close")
        self.assertEqual(self.watts("Heater"), 9.0)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class FallbackTests(HassTestCase):
    """A Home Assistant without subscribe_entities: subscribe_events + get_states."""

    entities_supported = False

    @defer.inlineCallbacks
    def test_fallback_path(self):
        self.home.set_state("light.desk_lamp", "on", {"brightness": 255})
        self.home.set_state("sensor.other", "5")
        self.start(DIMMER + """
- Heater:
    entity_id: sensor.heater_power
""")
        yield self.ready()
        self.assertEqual([(c["id"], c["type"]) for c in self.home.commands],
                         [(1, "subscribe_entities"), (2, "subscribe_events"), (3, "get_states")])
        self.assertEqual(self.home.commands[1]["event_type"], "state_changed")
        self.assertEqual(self.watts("Lamp"), 42.0)
        self.home.set_state("light.desk_lamp", "on", {"brightness": 51})
        self.home.set_state("sensor.other", "6")
        yield self.settle("Lamp", 10.0)
        self.assertNotIn("sensor.other", self.service.session.cache)
        self.home.set_state("sensor.heater_power", "1500.5")
        yield self.settle("Heater", 1500.5)
        self.home.remove_state("sensor.heater_power")
        yield self.roundtrip()
        self.assertEqual(self.watts("Heater"), 1500.5)
        self.assertNotIn("sensor.heater_power", self.service.session.cache)

    @defer.inlineCallbacks
    def test_20_megabyte_get_states_reply(self):
        filler = "x" * 1000
        for n in range(20500):
            self.home.states[f"sensor.filler_{n}"] = State(
                f"sensor.filler_{n}", "1", {"padding": filler}, 1.0, 1.0,
                {"id": "01M8B4AGAXJFVFXYR8AM7XMTA4", "parent_id": None, "user_id": None})
        reply = {"id": 3, "type": "result", "success": True,
                 "result": [s.as_dict() for s in self.home.states.values()]}
        self.assertGreater(len(json.dumps(reply, separators=(",", ":"))), 20 * 1000 * 1000)
        self.home.set_state("sensor.heater_power", "321")
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", source_extra=f"auth_token: {TOKEN}\nmax_message_size: 0")    # over the 16 MiB default
        yield until(lambda: self.service.session is not None and self.service.session.ready,
                    timeout=60, what="the 20 MB get_states reply")
        self.assertEqual(self.watts("Heater"), 321.0)
        self.assertEqual(list(self.service.session.cache), ["sensor.heater_power"])
        self.home.set_state("sensor.heater_power", "322")
        yield self.settle("Heater", 322.0)

    @defer.inlineCallbacks
    def test_max_message_size_limits(self):
        logs = LogCapture(self)
        for n in range(50):
            self.home.set_state(f"sensor.filler_{n}", "1", {"padding": "x" * 100})
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", source_extra=f"auth_token: {TOKEN}\nmax_message_size: 1000")
        yield until(lambda: len(self.home.closed) == 1, what="the oversized reply to end it")
        self.clock.advance(self.service.max_delay)
        yield until(lambda: len(self.home.closed) == 2, what="the second oversized reply")
        errors = [t for t in logs.texts() if "max_message_size" in t]
        self.assertEqual(len(errors), 1, logs.texts())      # once, not at every retry
        (retry,) = self.clock.getDelayedCalls()
        self.assertGreater(retry.getTime() - self.clock.seconds(), 1.0)   # backing off


class CacheTests(unittest.TestCase):
    """The a/c/r cache against the captured messages."""

    def test_captured_session(self):
        cache = {}
        events = [
            {"a": {"light.desk_lamp": {"s": "on", "a": {"supported_color_modes": ["brightness"],
             "color_mode": "brightness", "brightness": 64, "friendly_name": "Desk Lamp",
             "supported_features": 0}, "c": {"id": "01M8B4AHERA9B2KW4SGJMDQXZG", "parent_id": None,
             "user_id": "117fa03aaf9f4618931dd483d9cc8ff3"}, "lc": 1795669968.347856},
             "sensor.heater_power": {"s": "0.0", "a": {"state_class": "measurement",
             "unit_of_measurement": "W", "device_class": "power", "friendly_name": "Heater power"},
             "c": "01M8B4AGRXJS57RJ1X10MT3E6R", "lc": 1795669967.645749},
             "sensor.plug_rest": {"s": "12.5", "a": {"unit_of_measurement": "W",
             "device_class": "power", "friendly_name": "Plug REST"}, "c": {
             "id": "01M8B4AHEM36BZ8KZ1516GVXDS", "parent_id": None,
             "user_id": "117fa03aaf9f4618931dd483d9cc8ff3"}, "lc": 1795669968.340697}}},
            {"c": {"light.desk_lamp": {"+": {"lu": 1795669968.854475, "c": "01M8B4AHYNJMP52KMGQVX7A16Q",
             "a": {"brightness": 128}}}}},
            {"c": {"sensor.heater_power": {"+": {"s": "1500.5", "lc": 1795669968.856698, "c": {
             "user_id": "117fa03aaf9f4618931dd483d9cc8ff3", "id": "01M8B4AHYRPG7JSEBCRA7NJ304"}}}}},
            {"c": {"light.desk_lamp": {"+": {"s": "off", "lc": 1795669968.858684,
             "c": "01M8B4AHYT2JTCEENS71Q1P6AB", "a": {"color_mode": None, "brightness": None}}}}},
            {"c": {"sensor.plug_rest": {"+": {"lu": 1795669968.860045, "c": "01M8B4AHYWFQEA7NE53704DQAM",
             "a": {"voltage": 230}}}}},
            {"c": {"sensor.plug_rest": {"+": {"s": "13", "lc": 1795669968.861067,
             "c": "01M8B4AHYXYMMC1YQHND5RWKR4"}, "-": {"a": ["voltage", "friendly_name", "device_class"]}}}},
            {"a": {"sensor.created_later": {"s": "7", "a": {"unit_of_measurement": "W"}, "c": {
             "id": "01M8B4AHYYE643A8Q6ZQ0G9S5Y", "parent_id": None,
             "user_id": "117fa03aaf9f4618931dd483d9cc8ff3"}, "lc": 1795669968.862141}}},
            {"r": ["sensor.created_later"]},
            {"c": {"sensor.unknown": {"+": {"s": "1"}}}},
        ]
        wanted = {"light.desk_lamp", "sensor.heater_power", "sensor.plug_rest",
                  "sensor.created_later"}
        for event in events:
            apply_entities_event(cache, event, wanted)
        self.assertEqual(sorted(cache), ["light.desk_lamp", "sensor.heater_power", "sensor.plug_rest"])
        lamp = cache["light.desk_lamp"]
        self.assertEqual((lamp["state"], lamp["attributes"]["brightness"]), ("off", None))
        self.assertEqual(lamp["last_updated"], 1795669968.858684)
        self.assertEqual(lamp["context"], {"id": "01M8B4AHYT2JTCEENS71Q1P6AB", "parent_id": None,
                                           "user_id": "117fa03aaf9f4618931dd483d9cc8ff3"})
        heater = cache["sensor.heater_power"]
        self.assertEqual(heater["state"], "1500.5")
        self.assertEqual(heater["context"], {"id": "01M8B4AHYRPG7JSEBCRA7NJ304",
                                             "user_id": "117fa03aaf9f4618931dd483d9cc8ff3"})
        rest = cache["sensor.plug_rest"]
        self.assertEqual((rest["state"], rest["attributes"]), ("13", {"unit_of_measurement": "W"}))

    def test_server_diffs_round_trip(self):
        """The test server's diffs rebuild the server's own states through the client cache."""
        ctx = {"id": "A", "parent_id": None, "user_id": None}
        old = State("light.x", "on", {"brightness": 3, "gone": 1}, 1.0, 1.0, ctx)
        new = State("light.x", "on", {"brightness": 4, "new": None}, 1.0, 2.0,
                    {"id": "B", "parent_id": "P", "user_id": "U"})
        cache = {}
        apply_entities_event(cache, {"a": {"light.x": old.as_compressed()}}, {"light.x"})
        diff = state_diff(old, new)
        self.assertEqual(diff["c"]["light.x"]["-"], {"a": ["gone"]})
        self.assertEqual(diff["c"]["light.x"]["+"]["c"], {"parent_id": "P", "user_id": "U", "id": "B"})
        apply_entities_event(cache, diff, {"light.x"})
        self.assertEqual(cache["light.x"]["attributes"], {"brightness": 4})
        self.assertEqual(cache["light.x"]["last_updated"], 2.0)
        self.assertEqual(cache["light.x"]["context"], {"id": "B", "parent_id": "P", "user_id": "U"})

    def test_state_changed(self):
        cache = {"sensor.gone": {"state": "5"}}
        wanted = {"sensor.plug_rest", "sensor.gone"}
        new_state = {"entity_id": "sensor.plug_rest", "state": "12.5", "attributes": {}}

        def event(eid, new, event_type="state_changed"):
            return {"event_type": event_type, "data": {"entity_id": eid, "new_state": new}}
        self.assertEqual(apply_state_changed(cache, event("sensor.plug_rest", new_state), wanted),
                         "sensor.plug_rest")
        self.assertIs(cache["sensor.plug_rest"], new_state)
        self.assertIsNone(apply_state_changed(cache, event("sensor.other", new_state), wanted))
        self.assertIsNone(apply_state_changed(cache, event("sensor.gone", None, "call_service"),
                                              wanted))
        self.assertIsNone(apply_state_changed(cache, {"event_type": "state_changed"}, wanted))
        self.assertEqual(apply_state_changed(cache, event("sensor.gone", None), wanted),
                         "sensor.gone")
        self.assertEqual(sorted(cache), ["sensor.plug_rest"])


# ------------------------------------------------ in memory: no sockets, time on a task.Clock


_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class MemoryTransport(StringTransport):
    """A connection in memory; the protocol hears of its end on the next clock turn, as with TCP."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.aborted = False
        self.ending = None

    def loseConnection(self):
        super().loseConnection()
        self.end(ConnectionDone("closed by the client"))

    def abortConnection(self):
        self.aborted = True
        self.disconnecting = True
        self.end(ConnectionAborted("aborted by the client"))

    def unregisterProducer(self):
        self.producer = None      # as TCP transports: no error without a producer

    def end(self, reason):
        if self.ending is None:
            self.ending = self.clock.callLater(0, self.protocol.connectionLost, Failure(reason))


class MemoryConnection:
    """The server end of one in-memory websocket connection: it speaks frames as Home Assistant."""

    def __init__(self, protocol, transport):
        self.protocol = protocol
        self.transport = transport

    def handshake(self):
        request = self.transport.value().decode("ascii")
        self.transport.clear()
        (key,) = [line.split(":", 1)[1].strip() for line in request.split("\r\n")
                  if line.lower().startswith("sec-websocket-key:")]
        accept = base64.b64encode(hashlib.sha1((key + _WEBSOCKET_GUID).encode()).digest())
        self.protocol.dataReceived(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept
                                   + b"\r\n\r\n")

    def send(self, message, opcode=1):
        """One server frame: C{message} as JSON, or bytes as they are."""
        data = message if isinstance(message, bytes) else json.dumps(message).encode("utf-8")
        size = len(data)
        if size < 126:
            head = struct.pack("!BB", 0x80 | opcode, size)
        elif size < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, size)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
        self.protocol.dataReceived(head + data)

    def received(self):
        """What the client sent since the last call: dicts, and C{("close", code)} per close frame."""
        data, out = self.transport.value(), []
        self.transport.clear()
        while data:
            opcode, size, start = data[0] & 0x0F, data[1] & 0x7F, 2
            if size == 126:
                (size,), start = struct.unpack("!H", data[2:4]), 4
            elif size == 127:
                (size,), start = struct.unpack("!Q", data[2:10]), 10
            mask, start = data[start:start + 4], start + 4
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data[start:start + size]))
            data = data[start + size:]
            if opcode == 8:
                out.append(("close", struct.unpack("!H", payload[:2])[0] if payload else None))
            else:
                out.append(json.loads(payload))
        return out

    def drop(self):
        """The server ends the TCP connection without a close frame (a Home Assistant restart)."""
        self.transport.end(ConnectionLost("dropped by the server"))


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """Connects in memory; each connection is a L{MemoryConnection} in C{connections}."""

    def __init__(self, clock):
        self.clock = clock
        self.connections = []

    def connect(self, factory):
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8123))
        transport = MemoryTransport(self.clock)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.connections.append(MemoryConnection(protocol, transport))
        return defer.succeed(protocol)


AUTH_OK = {"type": "auth_ok", "ha_version": "2024.1.6"}
AUTH_REQUIRED = {"type": "auth_required", "ha_version": "2024.1.6"}
HEATER = "- Heater:\n    entity_id: sensor.heater_power\n"


class InMemoryTests(unittest.TestCase):
    """HassService, its ClientService, HassClientProtocol and HassSession over memory transports."""

    def setUp(self):
        self.clock = task.Clock()
        self.endpoint = MemoryEndpoint(self.clock)
        self.logs = LogCapture(self)

    def start(self, plugs=HEATER + DIMMER, source_extra="", **kwargs):
        config = load_text(config_text("ws://hass.local:8123", plugs, source_extra), "test.yml")
        self.plugs = build_plugs(config, self.clock)
        self.service = HassService(config.sources[0], self.plugs, self.clock, reactor=self.clock,
                                   random=lambda: 0.5, endpoint=self.endpoint, **kwargs)
        self.service.startService()
        self.addCleanup(self.stop)
        return self.connection()

    def stop(self):
        if self.service.running:
            stopped = self.service.stopService()
            self.clock.advance(0)
            return stopped

    def connection(self):
        """The newest connection, after the websocket handshake."""
        connection = self.endpoint.connections[-1]
        connection.handshake()
        return connection

    def login(self, connection):
        connection.send(AUTH_REQUIRED)
        connection.send(AUTH_OK)
        return connection.received()

    def ready(self, connection, states=None):
        """Log in and answer the subscription with C{states} (entity id -> compressed state)."""
        self.login(connection)
        connection.send({"id": 1, "type": "result", "success": True, "result": None})
        connection.send({"id": 1, "type": "event", "event": {"a": states or {}}})
        return connection.received()

    def texts(self, part):
        return [t for t in self.logs.texts() if part in t]

    def retry_delay(self):
        (retry,) = self.clock.getDelayedCalls()
        return retry.getTime() - self.clock.seconds()

    def test_auth_and_subscribe_entities(self):
        connection = self.start()
        self.assertEqual(connection.received(), [])         # Home Assistant speaks first
        connection.send(AUTH_REQUIRED)
        self.assertEqual(connection.received(), [{"type": "auth", "access_token": TOKEN}])
        connection.send(AUTH_OK)
        self.assertEqual(connection.received(), [
            {"id": 1, "type": "subscribe_entities",
             "entity_ids": ["light.desk_lamp", "sensor.heater_power"]}])
        self.assertTrue(self.service.connected)
        self.assertFalse(self.service.session.ready)
        ready = self.service.when_ready()
        self.assertNoResult(ready)
        # Result and first event coalesced in one frame, as HA sends them when asked to.
        connection.send([{"id": 1, "type": "result", "success": True, "result": None},
                         {"id": 1, "type": "event", "event": {"a": {
                             "sensor.heater_power": {"s": "0.0", "a": {}, "c": "01", "lc": 1.0},
                             "light.desk_lamp": {"s": "on", "a": {"brightness": 255}, "c": "02",
                                                 "lc": 1.0}}}}])
        self.assertIs(self.successResultOf(ready), self.service.session)
        self.assertEqual((self.plugs["Heater"].watts, self.plugs["Lamp"].watts), (0.0, 42.0))
        connection.send({"type": "event", "id": 1, "event": {"c": {
            "sensor.heater_power": {"+": {"s": "1500.5", "lc": 2.0, "c": "03"}}}}})
        self.assertEqual(self.plugs["Heater"].watts, 1500.5)
        self.assertEqual(self.service.last_update, self.clock.seconds())
        self.assertEqual(self.texts("Connected to Home Assistant 2024.1.6 at "
                                    "ws://hass.local:8123/api/websocket"), [
            "Connected to Home Assistant 2024.1.6 at ws://hass.local:8123/api/websocket"])

    def test_auth_invalid(self):
        connection = self.start()
        connection.send(AUTH_REQUIRED)
        connection.send({"type": "auth_invalid", "message": "Invalid access token or password"})
        self.assertEqual(connection.received()[-1], ("close", None))   # the client's close frame
        self.assertEqual(len(self.texts("rejected the access token")), 1)
        connection.send(struct.pack("!H", 1000), opcode=8)             # the server's close 1000
        connection.drop()
        self.clock.advance(0)
        self.assertFalse(self.service.connected)
        self.assertEqual(self.service.readiness.unready, 1)
        # Refused tokens wait the slow end of the range, every time.
        self.assertEqual(self.retry_delay(), self.service.max_delay + 0.5)
        self.clock.advance(self.retry_delay())
        connection = self.connection()
        connection.send(AUTH_REQUIRED)
        connection.send({"type": "auth_invalid", "message": "Invalid access token or password"})
        self.assertEqual(len(self.texts("rejected the access token")), 1)
        # A server that does not close after auth_invalid is dropped after ping_timeout.
        self.clock.advance(self.service.ping_timeout)
        self.assertTrue(connection.transport.aborted)
        self.assertEqual(len(self.texts("sent no close after auth_invalid within 10 s")), 1)
        self.clock.advance(0)
        self.assertEqual(self.retry_delay(), self.service.max_delay + 0.5)
        self.assertNotIn(TOKEN, "\n".join(self.logs.texts()))

    def test_silent_server(self):
        connection = self.start(ping_timeout=10)
        self.clock.advance(9)
        self.assertFalse(connection.transport.aborted)
        self.clock.advance(1)                    # no auth_required within ping_timeout
        self.assertTrue(connection.transport.aborted)
        self.assertEqual([t for t in self.logs.texts() if t.startswith("Home Assistant at")], [
            "Home Assistant at ws://hass.local:8123/api/websocket sent no auth_required within "
            "10 s: reconnecting"])
        self.clock.advance(0)
        self.assertEqual(self.service.readiness.unready, 1)
        # ClientService's attempt 1 plus one session that never became ready: 2 s, jittered.
        self.assertEqual(self.retry_delay(), 2.0 + 0.5)
        self.assertEqual(self.endpoint.connections[-1].received(), [])   # no token sent

    def test_ping_pong(self):
        connection = self.start(ping_interval=30, ping_timeout=10)
        self.ready(connection, {"sensor.heater_power": {"s": "7", "a": {}, "c": "01", "lc": 1.0}})
        self.clock.advance(30)
        self.assertEqual(connection.received(), [{"id": 2, "type": "ping"}])
        self.clock.advance(9)
        connection.send({"id": 2, "type": "pong"})
        self.clock.advance(29)
        self.assertEqual(connection.received(), [])
        self.clock.advance(1)
        self.assertEqual(connection.received(), [{"id": 3, "type": "ping"}])
        self.clock.advance(10)                   # no pong
        self.assertTrue(connection.transport.aborted)
        self.assertEqual(len(self.texts("sent no pong within 10 s: reconnecting")), 1)
        self.clock.advance(0)
        self.assertFalse(self.service.connected)
        self.assertIsNone(self.service.session)
        self.assertEqual(len(self.texts("Disconnected from Home Assistant at")), 0)  # said once
        self.assertEqual(self.plugs["Heater"].watts, 7.0)
        self.assertEqual(self.retry_delay(), 1.5)      # the session had been ready 70 s: 1 s
        self.clock.advance(self.retry_delay())
        self.ready(self.connection(),
                   {"sensor.heater_power": {"s": "8", "a": {}, "c": "01", "lc": 1.0}})
        self.assertEqual(self.plugs["Heater"].watts, 8.0)
        self.assertEqual(self.service.sessions, 2)

    def test_state_changed_fallback(self):
        connection = self.start()
        self.login(connection)
        connection.send({"id": 1, "type": "result", "success": False,
                         "error": {"code": "unknown_command", "message": "Unknown command."}})
        self.assertEqual(connection.received(), [
            {"id": 2, "type": "subscribe_events", "event_type": "state_changed"},
            {"id": 3, "type": "get_states"}])

        def changed(eid, state):
            new_state = None if state is None else {"entity_id": eid, "state": state,
                                                    "attributes": {}}
            return {"type": "event", "id": 2, "event": {"event_type": "state_changed", "data": {
                "entity_id": eid, "old_state": None, "new_state": new_state}}}
        # Events may come before the results; replies are matched by id.
        connection.send(changed("sensor.heater_power", "5"))
        connection.send(changed("sensor.other", "9"))
        connection.send({"id": 2, "type": "result", "success": True, "result": None})
        self.assertEqual(self.plugs["Heater"].watts, 5.0)
        self.assertFalse(self.service.session.ready)
        connection.send({"id": 3, "type": "result", "success": True, "result": [
            {"entity_id": "sensor.heater_power", "state": "6", "attributes": {}},
            {"entity_id": "sensor.other", "state": "9", "attributes": {}}]})
        self.assertTrue(self.service.session.ready)
        self.assertEqual(self.plugs["Heater"].watts, 6.0)
        self.assertEqual(sorted(self.service.session.cache), ["sensor.heater_power"])
        self.assertEqual(len(self.texts("has no entity light.desk_lamp")), 1)
        connection.send(changed("sensor.heater_power", None))
        self.assertEqual(self.service.session.cache, {})
        self.assertEqual(self.plugs["Heater"].watts, 6.0)
        self.assertEqual(len(self.texts("sensor.heater_power is gone")), 1)

    def test_refused_subscription(self):
        connection = self.start()
        self.login(connection)
        connection.send({"id": 1, "type": "result", "success": False, "error": {
            "code": "invalid_format", "message": "Entity ID x is an invalid entity ID"}})
        self.assertTrue(connection.transport.aborted)
        (line,) = self.texts("refused subscribe_entities")
        self.assertIn("(id 1): invalid_format: Entity ID x", line)

    def test_what_is_not_a_message(self):
        connection = self.start()
        self.ready(connection)
        connection.send(b"this is not json")
        connection.send([1, {"type": "event", "id": 1, "event": {"a": {
            "sensor.heater_power": {"s": "3", "a": {}, "c": "01", "lc": 1.0}}}}])
        connection.send(json.dumps({"type": "event", "id": 1, "event": {"c": {
            "sensor.heater_power": {"+": {"s": "4"}}}}}).encode(), opcode=2)   # binary
        connection.send({"type": "event", "id": 99, "event": {"a": {}}})  # no such subscription
        connection.send({"id": 7, "type": "result", "success": False,
                         "error": {"code": "id_reuse", "message": "Identifier values have to "
                                   "increase."}})
        self.assertEqual(self.plugs["Heater"].watts, 4.0)
        self.assertEqual(len(self.texts("sent a message that is not JSON")), 1)
        self.assertEqual(len(self.texts("sent int instead of a message")), 1)
        self.assertEqual(len(self.texts("refused command (id 7): id_reuse")), 1)
        self.assertFalse(connection.transport.aborted)

    def test_oversized_message(self):
        connection = self.start(source_extra=f"auth_token: {TOKEN}\nmax_message_size: 100")
        self.login(connection)
        connection.send({"id": 1, "type": "result", "success": True, "result": "x" * 200})
        self.clock.advance(0)
        self.assertEqual(len(self.texts("over max_message_size (100 bytes)")), 1)
        self.assertEqual(self.service.readiness.unready, 1)
        self.clock.advance(self.retry_delay())
        connection = self.connection()
        self.login(connection)
        connection.send({"id": 1, "type": "result", "success": True, "result": "x" * 200})
        self.clock.advance(0)
        self.assertEqual(len(self.texts("max_message_size")), 1)   # once

    def test_unreadable_token_file(self):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(TOKEN)
        connection = self.start(source_extra=f"auth_token_file: {path}")
        os.remove(path)
        connection.send(AUTH_REQUIRED)
        self.assertEqual(connection.received(), [])
        self.assertTrue(connection.transport.aborted)
        self.assertEqual(len(self.texts("asks for the access token, and it cannot be read from "
                                        "its file")), 1)

    def test_when_ready_and_stop(self):
        connection = self.start(HEATER + "    timeout_duration: 60\n")
        self.ready(connection)
        self.assertIs(self.successResultOf(self.service.when_ready()), self.service.session)
        connection.drop()
        self.clock.advance(0)
        waiting = self.service.when_ready()
        self.clock.advance(self.retry_delay())
        connection = self.connection()
        self.login(connection)
        stopped = self.service.stopService()      # authenticated, not yet subscribed
        self.failureResultOf(waiting, defer.CancelledError)
        self.assertEqual(connection.received(), [("close", 1000)])   # a polite goodbye
        self.clock.advance(0)
        self.successResultOf(stopped)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ConfigTests(unittest.TestCase):

    def load(self, source, plugs="- P:\n    entity_id: light.kitchen\n"):
        text = "sources:\n  - hass:\n" + textwrap.indent(textwrap.dedent(source), "      ") \
            + "      plugs:\n" + textwrap.indent(plugs, "        ")
        return load_text(text, "conf.yml")

    def problems(self, source, plugs="- P:\n    entity_id: light.kitchen\n"):
        with self.assertRaises(ConfigError) as caught:
            self.load(source, plugs)
        return caught.exception.problems

    def test_url_normalisation(self):
        cases = {
            "ws://hass:8123/api/websocket": "ws://hass:8123/api/websocket",
            "ws://hass:8123": "ws://hass:8123/api/websocket",
            "http://hass:8123/": "ws://hass:8123/api/websocket",
            "https://example.org": "wss://example.org/api/websocket",
            "https://example.org/ha/": "wss://example.org/ha/api/websocket",
            "wss://example.org/api": "wss://example.org/api/websocket",
            "HTTP://10.0.0.2:8123/api/websocket/": "ws://10.0.0.2:8123/api/websocket",
        }
        for given, expected in cases.items():
            self.assertEqual(normalise_url(given), expected, given)

    def test_defaults(self):
        config = self.load("url: http://hass:8123\nauth_token: abc\n")
        source = config.sources[0].settings
        self.assertEqual(source.url, "ws://hass:8123/api/websocket")
        self.assertEqual(source.max_message_size, 16 * 1024 * 1024)
        # 0 once meant no limit: older configs get the largest allowed.
        old = self.load("url: http://hass:8123\nauth_token: abc\nmax_message_size: 0\n")
        self.assertEqual(old.sources[0].settings.message_limit, 256 * 1024 * 1024)
        self.assertTrue(source.verify_tls)
        self.assertFalse(source.supervisor)
        plug = config.plugs["P"].settings
        self.assertEqual(plug.state_keypath, "state")
        self.assertEqual(plug.off_state_value, "off")
        self.assertIsNone(plug.on_state_value)

    def test_settings_are_frozen_with_the_declared_defaults(self):
        config = self.load("url: http://hass:8123\nauth_token: abc\n")
        source, plug = config.sources[0].settings, config.plugs["P"].settings
        self.assertIsInstance(source, HassSourceSettings)
        self.assertIsInstance(plug, HassPlugSettings)
        self.assertTrue(dataclasses.is_dataclass(source) and dataclasses.is_dataclass(plug))
        declared = {f.name: f.default for f in dataclasses.fields(HassPlugSettings)}
        self.assertEqual(declared["state_keypath"], "state")
        for name, default in declared.items():
            if name not in ("entity_id", "mac", "device_id"):   # written, or derived
                self.assertEqual(getattr(plug, name), default, name)
        self.assertEqual(plug.entity_id, "light.kitchen")
        self.assertEqual((source.auth_token_file, source.ca_file), (None, None))
        self.assertEqual((source.max_message_size, source.verify_tls), (16 * 1024 * 1024, True))
        with self.assertRaises(dataclasses.FrozenInstanceError):
            plug.state_keypath = "attributes/state"
        with self.assertRaises(dataclasses.FrozenInstanceError):
            source.url = "ws://elsewhere"

    def test_token_from_environment(self):
        self.patch(os, "environ", {**os.environ, "SENSELINK_TEST_HASS_TOKEN": "from-env"})
        config = self.load("url: ws://hass\nauth_token: ${SENSELINK_TEST_HASS_TOKEN}\n")
        self.assertEqual(config.sources[0].settings.auth_token, "from-env")

    def test_bad_url(self):
        (problem,) = self.problems("url: hass.local:8123\nauth_token: abc\n")
        self.assertTrue(problem.startswith("conf.yml:3: sources[0].hass.url: expected"), problem)

    def test_token_sources(self):
        (problem,) = self.problems("url: ws://hass\n")
        self.assertIn("auth_token", problem)
        self.assertTrue(problem.startswith("conf.yml:"), problem)
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("abc")
        (problem,) = self.problems(f"url: ws://hass\nauth_token: abc\nauth_token_file: {path}\n")
        self.assertIn("not both", problem)
        (problem,) = self.problems('url: ws://hass\nauth_token: " "\n')
        self.assertIn("sources[0].hass.auth_token: the access token is empty", problem)
        (problem,) = self.problems(f"url: ws://hass\nauth_token_file: {path}.missing\n")
        self.assertIn("cannot read the access token", problem)
        self.assertTrue(problem.startswith("conf.yml:2: sources[0].hass.auth_token_file: "), problem)

    def test_a_refused_key_is_one_problem(self):
        """A token or url refused by its converter is not also reported as missing."""
        (problem,) = self.problems("url: ws://hass\nauth_token: [abc]\n")
        self.assertIn("sources[0].hass.auth_token: expected text", problem)
        (problem,) = self.problems("url: ws://hass\nauth_token_file: [x]\n")
        self.assertIn("sources[0].hass.auth_token_file: expected text", problem)
        (problem,) = self.problems("url: 8123\nauth_token: abc\n")
        self.assertIn("sources[0].hass.url: expected", problem)

    def test_token_never_in_errors(self):
        problems = self.problems("url: ws://hass\nauth_token: very-secret\n",
                                 "- P:\n    entity_id: not an entity\n")
        self.assertNotIn("very-secret", "\n".join(problems))

    def test_plug_checks(self):
        (problem,) = self.problems("url: ws://hass\nauth_token: abc\n", "- P:\n    alias: x\n")
        self.assertIn("entity_id", problem)
        self.assertTrue(problem.startswith("conf.yml:6: sources[0].hass.plugs[0].P:"), problem)
        (problem,) = self.problems("url: ws://hass\nauth_token: abc\n",
                                   "- P:\n    entity_id: light.x\n    attribute: brightness\n")
        self.assertIn("attribute_max", problem)
        (problem,) = self.problems(
            "url: ws://hass\nauth_token: abc\n",
            "- P:\n    entity_id: light.x\n    attribute: brightness\n    attribute_max: 255\n"
            "    power_keypath: attributes/power\n")
        self.assertIn("power_keypath", problem)
        (problem,) = self.problems("url: ws://hass\nauth_token: abc\n",
                                   "- P:\n    entity_id: Light Kitchen\n")
        self.assertIn("entity id", problem)


class ProtocolDetailTests(HassTestCase):

    @defer.inlineCallbacks
    def test_silent_server_is_dropped(self):
        """No auth_required within the timeout: hang up and retry (no token sent)."""
        self.home.greet = False
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", ping_timeout=7)
        yield until(lambda: self.home.connections, what="the connection")
        self.clock.advance(7)
        yield until(lambda: self.home.closed, what="the client to hang up")
        self.assertEqual(self.home.auth_messages, [])
        self.home.greet = True
        self.home.set_state("sensor.heater_power", "4")
        self.clock.advance(self.service.max_delay)
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 4.0)

    @defer.inlineCallbacks
    def test_events_before_a_result_and_refused_commands(self):
        """Replies are matched by id: events may come first; unmatched errors are logged."""
        logs = LogCapture(self)
        self.home.supports_subscribe_entities = False
        self.home.set_state("sensor.heater_power", "1")

        def early_event(proto, command):
            if command["type"] == "get_states":
                self.home.set_state("sensor.heater_power", "2")
        self.home.before_command = early_event
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 2.0)
        self.home.before_command = None
        # A reused id and a command without one get Home Assistant's errors.
        before = len(self.home.commands)
        self.service.connection.send({"id": 1, "type": "ping"})
        self.service.connection.send({"type": "ping"})
        yield until(lambda: len(self.home.commands) == before + 2, what="the server's answers")
        yield self.roundtrip()
        # The first is said at once, the second counted and summed up when the minute ends.
        self.clock.advance(60)
        errors = [t for t in logs.texts() if "refused" in t]
        self.assertEqual(len(errors), 2, errors)
        self.assertIn("id_reuse", errors[0])
        self.assertIn("invalid_format", errors[1])
        self.assertIn("(and 1 more like it in the last minute)", errors[1])
        self.home.set_state("sensor.heater_power", "3")
        yield self.settle("Heater", 3.0)

    @defer.inlineCallbacks
    def test_server_is_unreachable(self):
        logs = LogCapture(self)
        port = self.home.port.getHost().port
        yield self.home.stop()
        self.start("""
- Heater:
    entity_id: sensor.heater_power
""", url=f"ws://127.0.0.1:{port}")
        yield until(lambda: self.clock.getDelayedCalls(), what="a retry")
        self.clock.advance(self.service.max_delay)
        yield until(lambda: len([t for t in logs.texts() if "Reconnecting" in t]) == 2,
                    what="the second retry")
        cannot = [t for t in logs.texts() if "Cannot connect to Home Assistant" in t]
        self.assertEqual(len(cannot), 1, cannot)
        (retry,) = self.clock.getDelayedCalls()
        self.assertGreater(retry.getTime() - self.clock.seconds(), 1.0)   # backing off
        self.assertEqual(self.watts("Heater"), 0.0)


def _self_signed(hostname="localhost"):
    """A key and a self-signed certificate for C{hostname} (PEM bytes)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            cert.public_bytes(serialization.Encoding.PEM))


class TLSTests(HassTestCase):
    """wss:// with a private certificate: ca_file, verify_tls."""

    def setUp(self):
        from twisted.internet import ssl
        key, cert = _self_signed()
        self.ca_file = self.mktemp()
        with open(self.ca_file, "wb") as f:
            f.write(cert)
        self.cert = cert
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen(tls=ssl.PrivateCertificate.loadPEM(key + cert).options())
        self.addCleanup(self._stop_home)
        self.clock = task.Clock()
        self.service = None
        self.home.set_state("sensor.heater_power", "77")
        self.url = f"https://localhost:{self.home.port.getHost().port}"

    @defer.inlineCallbacks
    def test_ca_file(self):
        self.start("- Heater:\n    entity_id: sensor.heater_power\n", url=self.url,
                   source_extra=f"auth_token: {TOKEN}\nca_file: {self.ca_file}")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 77.0)
        self.assertTrue(self.service.label.startswith("wss://localhost:"))

    @defer.inlineCallbacks
    def test_ca_bundle(self):
        """Every certificate of a CA file counts, not only the first."""
        bundle = self.mktemp()
        with open(bundle, "wb") as f:
            f.write(_self_signed("other.example")[1] + self.cert)
        self.start("- Heater:\n    entity_id: sensor.heater_power\n", url=self.url,
                   source_extra=f"auth_token: {TOKEN}\nca_file: {bundle}")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 77.0)

    @defer.inlineCallbacks
    def test_verify_tls_off(self):
        self.start("- Heater:\n    entity_id: sensor.heater_power\n", url=self.url,
                   source_extra=f"auth_token: {TOKEN}\nverify_tls: false")
        yield self.ready()
        self.assertEqual(self.watts("Heater"), 77.0)

    @defer.inlineCallbacks
    def test_unknown_certificate_is_refused(self):
        logs = LogCapture(self)
        self.start("- Heater:\n    entity_id: sensor.heater_power\n", url=self.url)
        yield until(lambda: self.service.readiness.unready == 1, what="the failed session")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)   # the retry
        self.assertEqual(self.home.auth_messages, [])     # the token never left
        self.assertEqual(self.service.sessions, 0)
        self.assertEqual(self.watts("Heater"), 0.0)
        self.assertNotIn(TOKEN, "\n".join(logs.texts()))
        (cannot,) = [t for t in logs.texts() if "Cannot connect to Home Assistant" in t]
        self.assertIn("certificate verify failed", cannot)
        self.assertIn(self.url.replace("https", "wss"), cannot)


class DaemonTests(unittest.TestCase):
    """A hass source inside the whole daemon, on the real reactor."""

    @defer.inlineCallbacks
    def test_daemon_follows_home_assistant(self):
        from senselink.service import makeService

        home = FakeHomeAssistant(TOKEN)
        home.listen()
        self.addCleanup(lambda: home.port is not None and home.stop())
        home.set_state("light.desk_lamp", "on", {"brightness": 255})
        # (a plug without mac makes a config warning, logged with a "warning" field
        # that trial's warning observer mistakes for a Python warning)
        config = load_text(config_text(home.url, DIMMER + "    mac: 53:75:31:F6:4B:01\n"),
                           "daemon.yml")
        daemon = makeService(config, port=0, interface="127.0.0.1", reactor=reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        (source,) = daemon.sources
        self.assertEqual((source.kind, source.label), ("hass", home.url))
        yield until(lambda: daemon.plugs["Lamp"].watts == 42.0, what="the lamp")
        self.assertTrue(source.connected)
        self.assertIsNotNone(source.last_update)
        home.set_state("light.desk_lamp", "on", {"brightness": 0})
        yield until(lambda: daemon.plugs["Lamp"].watts == 2.0, what="the dimmed lamp")
        yield daemon.stopService()
        yield until(lambda: not home.connections, what="the goodbye")
        self.assertEqual(daemon.plugs["Lamp"].watts, 2.0)


class ReadmeTests(unittest.TestCase):
    """The README's Home Assistant examples are valid configs that do what the text says."""

    def blocks(self):
        path = os.path.join(processes.ROOT, "README.md")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        section = text.split("## Home Assistant source", 1)[1].split("\n## ", 1)[0]
        return [b.split("\n", 1)[1] for b in section.split("```")[1::2] if b.startswith("yaml")]

    def test_example_file(self):
        path = os.path.join(processes.ROOT,
                            "examples", "hass.yml")
        self.patch(os, "environ", {**os.environ, "HASS_TOKEN": "abc"})
        from senselink.config import load
        config = load(path)
        self.assertEqual(config.sources[0].settings.url,
                         "ws://homeassistant.local:8123/api/websocket")
        self.assertEqual(len(config.plugs), 4)

    def test_examples(self):
        from senselink.keypath import lookup

        blocks = self.blocks()
        self.assertGreaterEqual(len(blocks), 6)
        load_text(blocks[0].replace("${HASS_TOKEN}", "abc"), "README.md")
        plugs = "".join(textwrap.dedent(b) for b in blocks[1:])
        config = load_text(config_text("ws://hass:8123", plugs), "README.md")
        clock = task.Clock()
        service = HassService(config.sources[0], build_plugs(config, clock), clock, reactor=reactor)
        bindings = {b.plug.id: b for bs in service.bindings.values() for b in bs}
        entity = {"entity_id": "switch.dehumidifier", "state": "on",
                  "attributes": {"energy": {"power": [230.1, 96.5]}}}
        b = bindings["Dehumidifier"]
        self.assertEqual(b.feed.entity(state=lookup(entity, b.state_path),
                                       power=b.power_paths.read(entity)), 96.5)
        b = bindings["Space_Heater"]
        self.assertEqual(b.feed.entity(state="on"), 1500.0)
        self.assertEqual(b.feed.entity(state="off"), 4.0)
        b = bindings["Living_Room_Dimmer"]
        self.assertEqual(b.feed.entity(state="on", attribute=255), 60.0)
        self.assertEqual(b.feed.entity(state="off", attribute=None), 0.5)


class TwistdTests(processes.Case):
    """The daemon as users run it, following the fake Home Assistant over the network."""

    @defer.inlineCallbacks
    def test_twistd_follows_home_assistant(self):
        from tests.support import free_port, sense, udp_client

        home = FakeHomeAssistant(TOKEN)
        home.listen()
        self.addCleanup(lambda: home.port is not None and home.stop())
        home.set_state("sensor.heater_power", "812.5", {"unit_of_measurement": "W"})
        path = os.path.join(self.mktemp_dir(), "hass.yml")
        with open(path, "w") as f:
            f.write(config_text(home.url.replace("ws://", "http://"), """
- Heater:
    alias: Heater
    mac: 53:75:31:F6:4B:09
    entity_id: sensor.heater_power
"""))
        os.chmod(path, 0o600)
        port = free_port()
        daemon = processes.DaemonProcess(self, [
            processes.twistd(), "-n", "--pidfile=", "senselink", "-c", path, "-p", str(port),
            "--interface", "127.0.0.1", "--log-level", "DEBUG"])
        yield until(lambda: any(c["type"] == "subscribe_entities" for c in home.commands),
                    timeout=30, what="the daemon's subscription")
        client = udp_client(self)

        @defer.inlineCallbacks
        def reported(watts):
            """Ask like Sense until the plug reports C{watts} (bounded)."""
            for _ in range(250):
                client.replies.clear()
                sense(client, port)
                (reply, _), = yield client.wait_for(1)
                power = reply["emeter"]["get_realtime"]["power"]
                if power == watts:
                    return power
                yield task.deferLater(reactor, 0.02, lambda: None)
            return power

        self.assertEqual((yield reported(812.5)), 812.5)
        home.set_state("sensor.heater_power", "20", {"unit_of_measurement": "W"})
        self.assertEqual((yield reported(20)), 20)
        output = daemon.stop()
        self.assertIn("Connected to Home Assistant 2024.1.6 at " + home.url, output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn(TOKEN, output)


class SupervisorTests(HassTestCase):
    """url: supervisor (or no url inside a Home Assistant app): the Supervisor's proxy,
    authenticated with $SUPERVISOR_TOKEN."""

    PLUG = """\
        - Lamp:
            entity_id: light.lamp
            mac: 53:75:31:F6:4B:01
            on_state_value: "on"
            max_watts: 42
        """

    def app_environment(self, **extra):
        port = self.home.port.getHost().port
        env = {k: v for k, v in os.environ.items()
               if k not in ("SUPERVISOR_TOKEN", "SUPERVISOR_API")}
        env.update({"SUPERVISOR_TOKEN": TOKEN, "SUPERVISOR_API": f"http://127.0.0.1:{port}"})
        env.update(extra)
        self.patch(os, "environ", env)

    @defer.inlineCallbacks
    def connect(self, source_extra):
        self.home.set_state("light.lamp", "on")
        text = (f"sources:\n  - hass:\n{source_extra}      plugs:\n"
                + textwrap.indent(textwrap.dedent(self.PLUG), " " * 8))
        self.plugs, self.service = start_hass_source(self, text, self.clock)
        yield self.ready()
        yield self.settle("Lamp", 42)

    @defer.inlineCallbacks
    def test_url_supervisor_uses_the_supervisor_token(self):
        self.app_environment()
        yield self.connect("      url: supervisor\n")
        port = self.home.port.getHost().port
        self.assertEqual(self.service.url, f"ws://127.0.0.1:{port}/core/api/websocket")
        self.assertEqual(self.home.auth_messages, [{"type": "auth", "access_token": TOKEN}])
        self.assertEqual(self.home.connections[0].http_request_path, "/core/api/websocket")

    @defer.inlineCallbacks
    def test_no_url_inside_the_app(self):
        self.app_environment()
        yield self.connect("")
        self.assertEqual(self.home.auth_messages, [{"type": "auth", "access_token": TOKEN}])

    @defer.inlineCallbacks
    def test_a_given_token_wins(self):
        self.app_environment(SUPERVISOR_TOKEN="the-app-token")
        yield self.connect(f"      url: Supervisor\n      auth_token: {TOKEN}\n")
        self.assertEqual(self.home.auth_messages, [{"type": "auth", "access_token": TOKEN}])

    def test_the_supervisor_url(self):
        self.assertEqual(supervisor_url({}), "ws://supervisor/core/api/websocket")
        self.assertEqual(supervisor_url({"SUPERVISOR_API": "http://127.0.0.1:8080/"}),
                         "ws://127.0.0.1:8080/core/api/websocket")
        self.assertEqual(supervisor_url({"SUPERVISOR_API": "https://sv.example/x"}),
                         "wss://sv.example/x/core/api/websocket")

    def test_outside_the_app(self):
        env = {k: v for k, v in os.environ.items() if k != "SUPERVISOR_TOKEN"}
        self.patch(os, "environ", env)
        plugs = "- P:\n    entity_id: light.kitchen\n"
        text = "sources:\n  - hass:\n{}      plugs:\n" + textwrap.indent(plugs, " " * 8)
        with self.assertRaises(ConfigError) as caught:
            load_text(text.format(""), "conf.yml")
        (problem,) = caught.exception.problems
        self.assertIn("sources[0].hass: missing required key 'url'", problem)
        with self.assertRaises(ConfigError) as caught:
            load_text(text.format("      url: supervisor\n"), "conf.yml")
        (problem,) = caught.exception.problems
        self.assertTrue(problem.startswith("conf.yml:2: sources[0].hass.url: supervisor needs "
                                           "$SUPERVISOR_TOKEN"), problem)
        # With a token of its own, url: supervisor is fine anywhere.
        config = load_text(text.format("      url: supervisor\n      auth_token: abc\n"),
                           "conf.yml")
        self.assertEqual(config.sources[0].settings.url, "supervisor")
        self.assertTrue(config.sources[0].settings.supervisor)
