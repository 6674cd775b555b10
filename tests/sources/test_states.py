"""Named states and readings in parts through every source that reads them, over real sockets:
a Home Assistant climate entity (the Autobahn server speaking HA's protocol), Tasmota-style
JSON payloads through a real mosquitto, and an HTTP JSON body from a real twisted.web server."""

import json
import textwrap

from twisted.internet import defer, reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink.config import load_text
from senselink.plugbuilder import build_plugs
from senselink.sources.hass import HassService
from senselink.sources.http import HttpPollService
from senselink.sources.mqtt import MqttService
from tests.hass_server import FakeHomeAssistant
from tests.httpserver import Meter, serve
from tests.mosquitto import require_mosquitto, started_broker
from tests.support import WAIT, wait_until

TOKEN = "states-test-token"


def indented(plugs, spaces):
    return textwrap.indent(textwrap.dedent(plugs).strip("\n"), " " * spaces) + "\n"


class LogLines:
    """Formatted log lines of the power model and the sources during a test."""

    def __init__(self, testcase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testcase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def __call__(self, containing=""):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace", "").startswith("senselink")
                and containing in formatEvent(e)]


# ---------------------------------------------------------------- Home Assistant

CLIMATE_ATTRIBUTES = {
    "hvac_modes": ["off", "heat", "cool", "heat_cool", "fan_only", "dry"],
    "min_temp": 7, "max_temp": 35, "target_temp_step": 0.5,
    "fan_modes": ["auto", "low", "medium", "high"],
    "current_temperature": 21.5, "temperature": 22, "fan_mode": "auto",
    "friendly_name": "Living Room", "supported_features": 393,
}


def climate(action):
    return dict(CLIMATE_ATTRIBUTES, hvac_action=action)


class HassTests(unittest.TestCase):

    def setUp(self):
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        self.addCleanup(lambda: self.home.port is not None and self.home.stop())
        self.log = LogLines(self)

    def start(self, plugs):
        text = (f"sources:\n- hass:\n    url: {self.home.url}\n    auth_token: {TOKEN}\n"
                f"    plugs:\n" + indented(plugs, 4))
        config = load_text(text, "test.yml")
        clock = task.Clock()
        self.plugs = build_plugs(config, clock)
        service = HassService(config.sources[0], self.plugs, clock, reactor=reactor,
                              random=lambda: 0.5)
        service.startService()
        self.addCleanup(service.stopService)
        return service.when_ready().addTimeout(WAIT, reactor)

    def settle(self, **watts):
        """Wait until the plugs named by the keywords have those watts."""
        return wait_until(lambda: all(self.plugs[p].watts == w for p, w in watts.items()),
                          lambda: f"{watts} (now { {p: self.plugs[p].watts for p in watts} })")

    @defer.inlineCallbacks
    def test_climate_entity(self):
        self.home.set_state("climate.living_room", "heat", climate("heating"))
        yield self.start("""
            - Mode:
                entity_id: climate.living_room
                state_power: {heat: 1800, cool: 950, fan_only: 60, dry: 300, "off": 0}
            - Action:
                entity_id: climate.living_room
                state_keypath: attributes/hvac_action
                state_power: {heating: 1700, cooling: 900, fan: 55, drying: 280, idle: 5, "off": 0}
        """)
        yield self.settle(Mode=1800, Action=1700)
        self.home.set_state("climate.living_room", "cool", climate("cooling"))
        yield self.settle(Mode=950, Action=900)
        self.assertTrue(self.plugs["Mode"].on)
        # A mode the plug does not know: it keeps its value, and the word is logged once.
        self.home.set_state("climate.living_room", "heat_cool", climate("idle"))
        yield self.settle(Mode=950, Action=5)
        self.home.set_state("climate.living_room", "heat_cool", climate("cooling"))
        yield self.settle(Mode=950, Action=900)
        self.assertEqual(self.log("is not in its state_power"), [
            "Plug Mode: state 'heat_cool' is not in its state_power ('heat', 'cool', "
            "'fan_only', 'dry', 'off'); keeping 950.0 W"])
        self.home.set_state("climate.living_room", "off", climate("off"))
        yield self.settle(Mode=0, Action=0)
        self.assertEqual((self.plugs["Mode"].on, self.plugs["Action"].on), (False, False))

    @defer.inlineCallbacks
    def test_power_in_parts(self):
        self.home.set_state("sensor.meter", "ok", {"phases": {"a": 100.5, "b": 200, "c": 49.5},
                                                   "current": 2.5, "voltage": 230})
        yield self.start("""
            - Phases:
                entity_id: sensor.meter
                power_keypaths: [attributes/phases/a, attributes/phases/b, attributes/phases/c]
            - Amps_Volts:
                entity_id: sensor.meter
                current_keypath: attributes/current
                voltage_keypath: attributes/voltage
        """)
        yield self.settle(Phases=350, Amps_Volts=575)
        self.home.set_state("sensor.meter", "ok", {"phases": {"a": 100.5, "c": 49.5},
                                                   "current": 1, "voltage": 230})
        yield self.settle(Amps_Volts=230)
        self.assertEqual(self.plugs["Phases"].watts, 350)          # a part is missing: kept
        (line,) = self.log("Cannot read Home Assistant entity sensor.meter")
        self.assertIn("Phases: power part 'attributes/phases/b' is missing, keeping 350.0 W", line)


# ---------------------------------------------------------------- MQTT

TASMOTA_SENSOR = {
    "Time": "2024-01-06T12:00:00",
    "ENERGY": {"TotalStartTime": "2023-11-01T10:00:00", "Total": [12.1, 3.4],
               "Yesterday": [0.5, 0.1], "Today": [0.2, 0.05], "Period": [1, 0],
               "Power": [45, 12], "ApparentPower": [50, 15], "ReactivePower": [20, 8],
               "Factor": [0.9, 0.8], "Voltage": 230, "Current": [0.2, 0.065]},
}


class MqttTests(unittest.TestCase):
    timeout = 120

    def setUp(self):
        require_mosquitto()
        self.log = LogLines(self)

    @defer.inlineCallbacks
    def start(self, plugs):
        self.broker = yield started_broker(self)
        plugs = textwrap.dedent(plugs).strip("\n") + "\n- marker:\n    power_topic: test/marker\n"
        text = (f"sources:\n- mqtt:\n    host: 127.0.0.1\n    port: {self.broker.port}\n"
                f"    plugs:\n" + indented(plugs, 4))
        config = load_text(text, "test.yml")
        self.plugs = build_plugs(config, reactor)
        service = MqttService(config.sources[0], self.plugs, reactor, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        yield service.when_ready().addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def publish(self, topic, document, **watts):
        """Publish C{document} as JSON; wait until it has been handled and the plugs named by
        the keywords have those watts."""
        yield self.broker.publish(topic, json.dumps(document))
        self.marks = getattr(self, "marks", 0) + 1
        yield self.broker.publish("test/marker", str(self.marks))
        yield wait_until(lambda: self.plugs["marker"].watts == self.marks, "the marker")
        self.assertEqual({p: self.plugs[p].watts for p in watts}, watts)

    @defer.inlineCallbacks
    def test_tasmota(self):
        yield self.start("""
            - Relay_Total:
                power_topic: tele/tasmota/SENSOR
                power_keypaths: [ENERGY/Power/0, ENERGY/Power/1]
            - Channel_One:
                power_topic: tele/tasmota/SENSOR
                current_keypath: ENERGY/Current/0
                voltage_keypath: ENERGY/Voltage
            - Heater:
                state_topic: stat/tasmota/RESULT
                state_topic_keypath: POWER2
                state_power: {on: 1500, off: 0.5}
                state_case_sensitive: false
            - Fan:
                state_topic: stat/ifan/RESULT
                state_topic_keypath: FanSpeed
                state_power: {0: 0.4, 1: 15, 2: 28, 3: 45}
        """)
        yield self.publish("tele/tasmota/SENSOR", TASMOTA_SENSOR, Relay_Total=57, Channel_One=46)
        # The second channel missing: the sum keeps its value; the product still reads.
        partial = json.loads(json.dumps(TASMOTA_SENSOR))
        partial["ENERGY"]["Power"] = [30]
        partial["ENERGY"]["Current"] = [0.1]
        yield self.publish("tele/tasmota/SENSOR", partial, Relay_Total=57, Channel_One=23)
        (line,) = self.log("power part 'ENERGY/Power/1' is missing")
        self.assertIn("plug Relay_Total", line)
        yield self.publish("stat/tasmota/RESULT", {"POWER1": "OFF", "POWER2": "ON"}, Heater=1500)
        self.assertTrue(self.plugs["Heater"].on)
        yield self.publish("stat/tasmota/RESULT", {"POWER1": "ON", "POWER2": "OFF"}, Heater=0.5)
        self.assertFalse(self.plugs["Heater"].on)
        yield self.publish("stat/ifan/RESULT", {"FanSpeed": 2}, Fan=28)
        yield self.publish("stat/ifan/RESULT", {"FanSpeed": 7}, Fan=28)      # unknown: kept
        yield self.publish("stat/ifan/RESULT", {"FanSpeed": 7}, Fan=28)
        yield self.publish("stat/ifan/RESULT", {"FanSpeed": 0}, Fan=0.4)
        self.assertEqual(self.log("is not in its state_power"), [
            "Plug Fan: state '7' is not in its state_power ('0', '1', '2', '3'); keeping 28.0 W"])


# ---------------------------------------------------------------- HTTP

EM_STATUS = {"id": 0, "a_current": 0.5, "a_voltage": 230.1, "a_act_power": 100.5,
             "b_act_power": 200, "c_act_power": -20.5, "total_act_power": 280,
             "pump": {"current": 4.2, "voltage": 231}, "washer": {"phase": "spin"}}


class HttpTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_json_body(self):
        log = LogLines(self)
        meter = Meter()
        port = serve(self, meter)
        meter.reply = (200, json.dumps(EM_STATUS).encode())
        text = (f"sources:\n- http:\n    url: http://127.0.0.1:{port}/rpc/EM.GetStatus?id=0\n"
                f"    plugs:\n" + indented("""
            - House:
                power_keypaths: [a_act_power, b_act_power, c_act_power]
            - Pump:
                current_keypath: pump/current
                voltage_keypath: pump/voltage
            - Washer:
                state_keypath: washer/phase
                state_power: {wash: 500, rinse: 150, spin: 350, idle: 2}
                state_power_default: 200
        """, 4))
        config = load_text(text, "test.yml")
        clock = task.Clock()
        plugs = build_plugs(config, clock)
        service = HttpPollService(config.sources[0], plugs, clock, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)

        @defer.inlineCallbacks
        def poll(body, **watts):
            meter.reply = (200, json.dumps(body).encode())
            polls = len(meter.requests)
            if service.polls:
                clock.advance(service.interval)
            yield wait_until(lambda: len(meter.requests) > polls and service.current_poll is None,
                             "the poll")
            self.assertEqual({p: plugs[p].watts for p in watts}, watts)

        yield poll(EM_STATUS, House=280, Pump=4.2 * 231, Washer=350)
        yield poll(dict(EM_STATUS, washer={"phase": "prewash"}), Washer=200)
        self.assertEqual(log("is not in its state_power"), [
            "Plug Washer: state 'prewash' is not in its state_power ('wash', 'rinse', 'spin', "
            "'idle'); reporting state_power_default 200.0 W"])
        partial = {k: v for k, v in EM_STATUS.items() if k != "b_act_power"}
        yield poll(dict(partial, washer={"phase": "rinse"}), House=280, Washer=150)
        (line,) = log("HTTP plug House: cannot use")
        self.assertIn("power part 'b_act_power' is missing; keeping 280.0 W", line)
        yield poll(dict(EM_STATUS, c_act_power=-1000), House=0)
