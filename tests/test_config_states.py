"""Config of named states (state_power) and readings in parts; the README's examples and
examples/states.yml through `python -m senselink check`."""

import os
import re
import subprocess
import sys
import textwrap

from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink import config
from senselink.config import yamlmarks
from senselink.plugs import Plug
from senselink.power import Feed, PowerModel
from senselink.readings import PowerPaths
from tests.processes import ROOT

HASS = "sources:\n- hass:\n    url: ws://127.0.0.1:8123\n    auth_token: t\n    plugs:\n"
MQTT = "sources:\n- mqtt:\n    host: 127.0.0.1\n    plugs:\n"
HTTP = "sources:\n- http:\n    url: http://127.0.0.1:8080/\n    plugs:\n"


def text_of(source, plug):
    """A config with one plug C{p} of C{source}'s kind (C{plug}: its settings, YAML)."""
    return source + "    - p:\n" + textwrap.indent(textwrap.dedent(plug).strip("\n"), " " * 8) + "\n"


def load(source, plug):
    return config.load_text(text_of(source, plug), "cfg.yml").plugs["p"].options


def problems(source, plug):
    try:
        config.load_text(text_of(source, plug), "cfg.yml")
    except config.ConfigError as e:
        return e.problems
    raise AssertionError("the config was accepted")


class StatePowerTests(unittest.TestCase):

    def test_valid(self):
        options = load(HASS, """
            entity_id: climate.living_room
            state_power: {heat: 1800, cool: 950.5, fan_only: 60, idle: 4, "off": 0}
            state_power_default: 12
            state_case_sensitive: false
        """)
        self.assertEqual(options["state_power"], {"heat": 1800.0, "cool": 950.5, "fan_only": 60.0,
                                                  "idle": 4.0, "off": 0.0})
        self.assertEqual(options["state_power_default"], 12)
        self.assertIs(options["state_case_sensitive"], False)

    def test_defaults(self):
        options = load(HASS, "entity_id: climate.living_room")
        self.assertEqual((options["state_power"], options["state_case_sensitive"],
                          options["state_power_default"]), (None, True, None))

    def test_yaml_booleans_and_numbers_as_keys_are_words(self):
        options = load(MQTT, """
            state_topic: t
            state_power: {on: 40, off: 0.5, yes: 1, no: 2, true: 3, false: 4, "ON": 5, 2: 28}
        """)
        self.assertEqual(options["state_power"], {"on": 40, "off": 0.5, "yes": 1, "no": 2,
                                                  "true": 3, "false": 4, "ON": 5, "2": 28})
        options = load(MQTT, """
            state_topic: t
            state_power:
              On: 40
              OFF: 0.5
        """)
        self.assertEqual(options["state_power"], {"On": 40, "OFF": 0.5})

    def test_watts_must_be_finite_numbers_at_least_zero(self):
        for value, expected in (("-1", "expected a number from 0 to 1000000000 W, got -1"),
                                (".nan", "expected a number from 0 to 1000000000 W (a finite number), got nan"),
                                (".inf", "expected a number from 0 to 1000000000 W (a finite number), got inf"),
                                ("lots", "expected a number from 0 to 1000000000 W, got 'lots' (str)"),
                                ("[1, 2]", "expected a number from 0 to 1000000000 W, got a list [1, 2]"),
                                ("true", "expected a number from 0 to 1000000000 W, got True (bool)")):
            found = problems(HASS, f"""
                entity_id: climate.x
                state_power:
                  heat: 1800
                  cool: {value}
            """)
            self.assertEqual(found, [f"cfg.yml:10: sources[0].hass.plugs[0].p.state_power.cool: "
                                     f"watts of state 'cool': {expected}"], value)

    def test_watts_above_max_plug_watts(self):
        found = problems(HASS, """
            entity_id: climate.x
            state_power: {heat: 1800, boost: 250000}
            state_power_default: 100001
        """)
        self.assertEqual(found, [
            "cfg.yml:9: sources[0].hass.plugs[0].p.state_power_default: 100001 W is above "
            "max_plug_watts (100000 W)",
            "cfg.yml:8: sources[0].hass.plugs[0].p.state_power: 250000 W of state 'boost' is "
            "above max_plug_watts (100000 W)"])
        config.load_text("max_plug_watts: 300000\n" + text_of(HASS, """
            entity_id: climate.x
            state_power: {heat: 1800, boost: 250000}
        """), "cfg.yml")

    def test_a_null_watts_value(self):
        self.assertEqual(problems(HASS, "entity_id: climate.x\nstate_power: {heat: }"), [
            "cfg.yml:8: sources[0].hass.plugs[0].p.state_power.heat: watts of state 'heat': "
            "expected a number from 0 to 1000000000 W, got nothing (null)"])

    def test_not_a_mapping(self):
        for value in ("heat", "[heat, cool]", "{}"):
            (problem,) = problems(HASS, f"entity_id: climate.x\nstate_power: {value}")
            self.assertRegex(problem, r"^cfg\.yml:8: sources\[0\]\.hass\.plugs\[0\]\.p\.state_power: "
                                      r"expected a mapping of states to watts")

    def test_keys_that_are_no_words(self):
        (problem,) = problems(HASS, "entity_id: climate.x\nstate_power: {~: 1}")
        self.assertIn("expected a state word as key, got nothing (null); quote it", problem)
        (problem,) = problems(HASS, "entity_id: climate.x\nstate_power: {'': 1}")
        self.assertIn("a state word must not be empty", problem)
        (problem,) = problems(HASS, "entity_id: climate.x\nstate_power: {2: 1, '2': 3}")
        self.assertIn("state '2' is given twice", problem)

    def test_too_many_words(self):
        words = ", ".join(f"s{n}: 1" for n in range(300))
        (problem,) = problems(HASS, f"entity_id: climate.x\nstate_power: {{{words}}}")
        self.assertIn("expected at most 256 states, got 300", problem)

    def test_same_word_in_on_or_off_state_value(self):
        found = problems(HASS, """
            entity_id: climate.x
            state_power:
              heat: 1800
              on: 50
            on_state_value: on
            off_state_value: heat
        """)
        self.assertEqual(found, [
            "cfg.yml:11: sources[0].hass.plugs[0].p.on_state_value: on_state_value 'on' is also "
            "in state_power (line 8): give that state's watts in one place",
            "cfg.yml:12: sources[0].hass.plugs[0].p.off_state_value: off_state_value 'heat' is "
            "also in state_power (line 8): give that state's watts in one place"])

    def test_same_word_ignoring_case(self):
        found = problems(MQTT, """
            state_topic: t
            state_power: {On: 50, Idle: 2, IDLE: 3}
            state_case_sensitive: false
            on_state_value: ON
        """)
        self.assertEqual(found, [
            "cfg.yml:7: sources[0].mqtt.plugs[0].p.state_power: states 'Idle' and 'IDLE' are the "
            "same word with state_case_sensitive: false",
            "cfg.yml:9: sources[0].mqtt.plugs[0].p.on_state_value: on_state_value 'ON' is also "
            "in state_power (line 7): give that state's watts in one place"])
        # Case counts by default: different words.
        load(MQTT, "state_topic: t\nstate_power: {On: 50}\non_state_value: ON")

    def test_default_on_and_off_values_yield(self):
        options = load(MQTT, "state_topic: t\nstate_power: {on: 50, off: 1}")
        self.assertEqual((options["on_state_value"], options["off_state_value"]), ("on", "off"))
        load(HTTP, "state_keypath: s\nstate_power: {on: 50, off: 1}")
        load(HASS, "entity_id: fan.x\nstate_power: {'off': 1}")

    def test_default_needs_state_power(self):
        self.assertEqual(problems(HASS, "entity_id: climate.x\nstate_power_default: 5"), [
            "cfg.yml:8: sources[0].hass.plugs[0].p.state_power_default: state_power_default "
            "needs state_power (the watts of the known states)"])
        (problem,) = problems(HASS, "entity_id: climate.x\nstate_power: {a: 1}\n"
                                    "state_power_default: -5")
        self.assertIn("state_power_default: expected a number from 0 to 1000000000 W", problem)
        (problem,) = problems(HASS, "entity_id: climate.x\nstate_case_sensitive: 'no'")
        self.assertIn("state_case_sensitive: expected true or false", problem)

    def test_not_with_measured_power(self):
        for source, plug, key, line in (
                (HASS, "entity_id: sensor.x\npower_keypath: attributes/w", "power_keypath", 8),
                (HASS, "entity_id: sensor.x\ncurrent_keypath: a\nvoltage_keypath: b",
                 "current_keypath", 8),
                (HTTP, "state_keypath: s\npower_keypaths: [a, b]", "power_keypaths", 7),
                (MQTT, "state_topic: s\npower_topic: p", "power_topic", 7)):
            found = problems(source, plug + "\nstate_power: {heat: 1}")
            self.assertIn(f"cfg.yml:{line}: sources[0].", found[0])
            self.assertIn(f".p.{key}: state_power gives watts by state: it cannot be combined "
                          f"with {key}, which reads measured watts", found[0])

    def test_needs_a_state(self):
        found = problems(MQTT, "power_topic: p\nstate_power: {heat: 1}")
        self.assertIn("cfg.yml:5: sources[0].mqtt.plugs[0].p.state_power: "
                      "state_power needs state_topic", found)
        found = problems(MQTT, "attribute_topic: a\nattribute_max: 5\nstate_power: {heat: 1}")
        self.assertEqual(found, ["cfg.yml:5: sources[0].mqtt.plugs[0].p.state_power: "
                                 "state_power needs state_topic"])
        (problem,) = problems(HTTP, "state_power: {heat: 1}")
        self.assertIn("state_power needs state_keypath", problem)


class PowerPartsTests(unittest.TestCase):

    def test_valid(self):
        options = load(HASS, """
            entity_id: sensor.meter
            power_keypaths: [attributes/a, attributes/b, attributes/c]
        """)
        self.assertEqual(options["power_keypaths"], ["attributes/a", "attributes/b", "attributes/c"])
        options = load(MQTT, """
            power_topic: tele/pool/SENSOR
            current_keypath: ENERGY/Current
            voltage_keypath: ENERGY/Voltage
        """)
        self.assertEqual((options["current_keypath"], options["voltage_keypath"]),
                         ("ENERGY/Current", "ENERGY/Voltage"))
        load(HTTP, "power_keypaths: [a]")

    def test_bad_keypaths(self):
        for value, expected in (("[]", "expected a list of keypaths"),
                                ("a/b", "expected a list of keypaths"),
                                ("[a, '/']", "expected a '/'-separated keypath"),
                                ("[a, [b]]", "expected text, got a list"),
                                ("[" + ", ".join(["a"] * 17) + "]",
                                 "expected at most 16 keypaths, got 17")):
            (problem,) = problems(HTTP, f"power_keypaths: {value}")
            self.assertIn(f"cfg.yml:6: sources[0].http.plugs[0].p.power_keypaths: {expected}",
                          problem)

    def test_one_way_of_reading_the_watts(self):
        (problem,) = problems(HASS, "entity_id: sensor.x\npower_keypath: a\npower_keypaths: [b, c]")
        self.assertEqual(problem, "cfg.yml:6: sources[0].hass.plugs[0].p: power_keypath and "
                                  "power_keypaths exclude each other: give one way to read the watts")
        (problem,) = problems(HTTP, "power_keypaths: [b, c]\ncurrent_keypath: i\nvoltage_keypath: u")
        self.assertIn("power_keypaths and current_keypath exclude each other", problem)
        (problem,) = problems(MQTT, "power_topic: p\npower_topic_keypath: a\npower_keypaths: [b]")
        self.assertIn("power_topic_keypath and power_keypaths exclude each other", problem)

    def test_current_and_voltage_go_together(self):
        for plug in ("current_keypath: i", "voltage_keypath: u"):
            found = problems(HTTP, plug)
            self.assertIn("current_keypath and voltage_keypath go together "
                          "(watts = current x voltage)", found[0])

    def test_not_with_an_attribute(self):
        (problem,) = problems(HASS, "entity_id: fan.x\nattribute: percentage\nattribute_max: 100\n"
                                    "power_keypaths: [a, b]")
        self.assertIn("power_keypaths reads watts directly: it cannot be combined with "
                      "attribute or attribute_keypath", problem)
        (problem,) = problems(HTTP, "attribute_keypath: x\nattribute_max: 9\ncurrent_keypath: i\n"
                                    "voltage_keypath: u")
        self.assertIn("current_keypath and attribute_keypath exclude each other", problem)

    def test_mqtt_parts_need_the_power_topic(self):
        found = problems(MQTT, "state_topic: s\npower_keypaths: [a, b]")
        self.assertEqual(found, ["cfg.yml:5: sources[0].mqtt.plugs[0].p.power_keypaths: "
                                 "power_keypaths needs power_topic"])


class YamlKeyTests(unittest.TestCase):

    def test_boolean_keys_are_the_text_written(self):
        document, duplicates = yamlmarks.read_yaml("a: {on: 1, Off: 2, 'yes': 3, 1: 4}\n")
        self.assertEqual(document, {"a": {"on": 1, "Off": 2, "yes": 3, 1: 4}})
        self.assertEqual(duplicates, [])

    def test_duplicate_boolean_keys_are_found(self):
        document, duplicates = yamlmarks.read_yaml("on: 1\nyes: 2\non: 3\n")
        self.assertEqual(document, {"on": 3, "yes": 2})
        self.assertEqual([(d.key, d.first, d.line) for d in duplicates], [("on", 1, 3)])


class CheckCommandTests(unittest.TestCase):
    """`python -m senselink check` accepts the README's examples and examples/states.yml."""

    def check(self, path):
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={**os.environ, "HASS_TOKEN": "a-token"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(": valid;", result.stdout)
        return config.load(path) if os.path.isabs(path) else config.load(os.path.join(ROOT, path))

    def readme_blocks(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            text = f.read()
        section = text.split("\n## Named states and combined readings\n", 1)[1]
        section = section.split("\n## ", 1)[0]
        return re.findall(r"```yaml\n(.*?)```", section, re.S)

    def test_readme_examples(self):
        blocks = self.readme_blocks()
        self.assertEqual(len(blocks), 4)
        self.patch(os, "environ", {**os.environ, "HASS_TOKEN": "a-token"})
        keys, feeds = set(), {}
        clock = Clock()
        for block in blocks:
            path = os.path.abspath(self.mktemp() + ".yml")
            with open(path, "w", encoding="utf-8") as f:
                f.write(block)
            loaded = self.check(path)
            for plug in loaded.plugs.values():
                keys.update(key for key, value in plug.options.items()
                            if key.startswith(("state_power", "power_keypaths", "current_"))
                            and value is not None)
                settings = plug.settings
                feeds[plug.id] = Feed(Plug(plug.id, mac=settings.mac, device_id=settings.device_id,
                                           kind=plug.kind, clock=clock),
                                      PowerModel.from_settings(settings, plug.max_plug_watts),
                                      clock, uses_attribute=getattr(settings, "attribute",
                                                                    None) is not None)
        self.assertEqual(keys, {"state_power", "state_power_default", "power_keypaths",
                                "current_keypath"})
        # What the text says the examples do.
        self.assertEqual(feeds["Heat_Pump"].entity(state="heat"), 1800)
        self.assertEqual(feeds["Heat_Pump_Action"].entity(state="idle"), 4)
        self.assertEqual(feeds["Washer"].entity(state="spin"), 350)
        self.assertEqual(feeds["Washer"].entity(state="prewash"), 200)
        fan = feeds["Bedroom_Fan"]
        self.assertEqual(fan.entity(state="on", attribute=50), 24.5)
        self.assertEqual(fan.entity(state="unavailable"), 0)
        self.assertEqual(fan.entity(state="off", attribute=None), 0.5)
        self.assertEqual(feeds["Ceiling_Fan"].state(2), 28)
        self.assertEqual(feeds["Desk_Fan"].state("HIGH"), 31)
        self.assertEqual(feeds["Desk_Fan"].state("off"), 0)
        paths = PowerPaths(parts=["ENERGY/Power/0", "ENERGY/Power/1"])
        self.assertEqual(feeds["Two_Channel_Relay"].power(
            paths.read({"ENERGY": {"Power": [45, 12]}})), 57)
        paths = PowerPaths(current="ENERGY/Current", voltage="ENERGY/Voltage")
        self.assertEqual(feeds["Pool_Pump"].power(
            paths.read({"ENERGY": {"Current": 4, "Voltage": 231}})), 924)

    def test_example_file(self):
        self.patch(os, "environ", {**os.environ, "HASS_TOKEN": "a-token"})
        loaded = self.check("examples/states.yml")
        self.assertEqual(loaded.plugs["Heater"].settings.state_power, {"on": 1500, "off": 0.5})
        kinds = {plug.kind for plug in loaded.plugs.values() if plug.settings.state_power}
        self.assertEqual(kinds, {"hass", "mqtt"})
