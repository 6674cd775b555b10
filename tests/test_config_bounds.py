"""Every value a config holds has a bound declared where its type is declared: numbers
in a range a person would call sane, names that are valid Unicode without control
characters, text that YAML read as text, MACs and device ids matched whole, ${NAME}
references that are references (issue: every input has a declared bound)."""

import os
import subprocess
import sys

from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink import config, sources
from senselink.config.fields import Bounded
from senselink.config.schema import MODEL_FIELDS, PLUG_FIELDS, POWER_FIELDS, TOP_LEVEL
from senselink.plugs import Plug

from tests.processes import ROOT

STATIC = "sources:\n- static:\n    plugs:\n    - a:\n        "


def errors_of(text, path="cfg.yml"):
    try:
        config.load_text(text, path)
    except config.ConfigError as e:
        return e.problems
    raise AssertionError(f"config was accepted: {text!r}")


def one_error(test, text):
    problems = errors_of(text)
    test.assertEqual(len(problems), 1, problems)
    return problems[0]


class NumberRangeTests(unittest.TestCase):
    def test_every_number_field_declares_its_range(self):
        """Walk every field of every kind: a number converter carries both ends of its range
        (L{Bounded} refuses to be declared without them)."""
        tables = [TOP_LEVEL, PLUG_FIELDS, POWER_FIELDS, MODEL_FIELDS]
        for kind in sources.default_kinds().values():
            tables += [kind.source_fields, kind.plug_fields]
        numbers = 0
        for table in tables:
            for key, field in table.items():
                if isinstance(field.convert, Bounded):
                    numbers += 1
                    low = field.convert.above if field.convert.above is not None \
                        else field.convert.minimum
                    self.assertLess(abs(low), 1e10, key)
                    self.assertLess(abs(field.convert.maximum), 1e10, key)
        self.assertGreater(numbers, 15)
        with self.assertRaises(TypeError):
            Bounded(minimum=0)
        with self.assertRaises(TypeError):
            Bounded(maximum=5)

    def test_the_nonsense_values_users_wrote_are_refused_naming_the_range(self):
        cases = [
            ("state_save_interval: 1e-9\nsources: []\n",
             "cfg.yml:1: state_save_interval: expected a number from 1 to 86400 s, got 1e-09"),
            ("state_save_interval: 1e300\nsources: []\n",
             "cfg.yml:1: state_save_interval: expected a number from 1 to 86400 s, got 1e+300"),
            ("sources:\n- http:\n    url: http://127.0.0.1:1/x\n    interval: 1e-9\n"
             "    plugs: []\n",
             "cfg.yml:4: sources[0].http.interval: expected a number from 1 to 86400 s, "
             "got 1e-09"),
            (STATIC + "skip_rate: 2147483648\n",
             "cfg.yml:5: sources[0].static.plugs[0].a.skip_rate: expected a whole number from "
             "0 to 1000, got 2147483648"),
            (STATIC + "voltage: 1e-320\n",
             "cfg.yml:5: sources[0].static.plugs[0].a.voltage: expected a number from 1 to "
             "1000 V, got 1e-320"),
            (STATIC + "skip_rate: " + "9" * 401 + "\n",
             "cfg.yml:5: sources[0].static.plugs[0].a.skip_rate: expected a whole number from "
             "0 to 1000, got a number of 401 digits"),
            ("max_plug_watts: 0.5\nsources: []\n",
             "cfg.yml:1: max_plug_watts: expected a number from 1 to 1000000000 W, got 0.5"),
            ("rate_limit: {burst: 1e-9}\nsources: []\n",
             "cfg.yml:1: rate_limit: burst: expected a number from 0.001 to 1000000, got 1e-09"),
        ]
        for text, expected in cases:
            self.assertEqual(errors_of(text), [expected], text)

    def test_min_watts_above_max_watts(self):
        self.assertEqual(one_error(self, STATIC + "min_watts: 50\n        max_watts: 10\n"),
                         "cfg.yml:5: sources[0].static.plugs[0].a.min_watts: min_watts (50 W) "
                         "is above max_watts (10 W)")
        config.load_text(STATIC + "min_watts: 10\n        max_watts: 10\n", "cfg.yml")

    def test_attribute_max_at_or_below_attribute_min_in_every_kind(self):
        """The check is in one place, so http (which lacked it) has it too."""
        plugs = {
            "http": "- http:\n    url: http://127.0.0.1:1/x\n    plugs:\n    - a:\n"
                    "        attribute_keypath: level\n",
            "mqtt": "- mqtt:\n    host: 127.0.0.1\n    plugs:\n    - a:\n"
                    "        attribute_topic: t\n",
            "hass": "- hass:\n    url: ws://127.0.0.1:1\n    auth_token: x\n    plugs:\n"
                    "    - a:\n        entity_id: light.a\n        attribute: brightness\n",
        }
        for kind, text in plugs.items():
            problem = one_error(self, "sources:\n" + text
                                + "        attribute_min: 10\n        attribute_max: 10\n")
            self.assertIn(f"sources[0].{kind}.plugs[0].a.attribute_max: attribute_max (10) "
                          f"must be above attribute_min (10)", problem)

    def test_negative_zero_is_zero(self):
        c = config.load_text("sources:\n- mutable:\n    plugs:\n    - a: {power: -0.0}\n",
                             "cfg.yml")
        self.assertEqual(repr(c.plugs["a"].options["power"]), "0.0")
        plug = Plug("a", mac="53:75:31:00:00:01", device_id="0" * 40, kind="mutable",
                    clock=Clock(), watts=-0.0)
        self.assertEqual(repr(plug.watts), "0.0")
        plug.set_power(5.0)
        plug.set_power(-0.0)
        self.assertEqual(repr(plug.watts), "0.0")


class NameTests(unittest.TestCase):
    def test_control_characters_blank_and_long_plug_ids(self):
        for plug_id, expected in [
            ('""', "plug id: expected a non-empty name"),
            ('"\\e[31mred"', "plug id: expected a name without control characters"),
            ('"bell\\a"', "plug id: expected a name without control characters"),
            ('"   "', "plug id: expected a non-empty name"),
            ("p" * 129, "plug id: expected text of at most 128 characters, got 129"),
        ]:
            problem = one_error(self, f"sources:\n- static:\n    plugs:\n    - {plug_id}: "
                                      f"{{max_watts: 1}}\n")
            self.assertIn(expected, problem)
            self.assertNotIn("\x1b", problem)
            self.assertNotIn("\x07", problem)

    def test_a_lone_surrogate_is_refused(self):
        problem = one_error(self, STATIC + 'alias: "bad \\ud800 name"\n')
        self.assertIn("a.alias: expected valid Unicode text", problem)
        problem = one_error(self, 'device: {alias: "\\udcff"}\nsources: []\n')
        self.assertIn("device: alias: expected valid Unicode text", problem)

    def test_a_non_utf8_alias_from_the_environment_fails_the_check(self):
        """The check refuses it with one line, instead of a daemon that answers no Sense
        request at all."""
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(STATIC + "alias: ${SL_ALIAS}\n        max_watts: 5\n")
        env = {k: v for k, v in os.environb.items()}
        env[b"SL_ALIAS"] = b"Dryer \xff\xfe"
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                cwd=ROOT, capture_output=True, timeout=60, env=env)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertEqual(result.stderr.decode("utf-8").splitlines(), [
            f"{path}:5: sources[0].static.plugs[0].a.alias: expected valid Unicode text, got "
            f"bytes that are not UTF-8 (an environment variable's value, or a \\ud800-style "
            f"escape)",
            f"senselink check: {path} is not valid"])

    def test_a_non_utf8_web_token_is_refused(self):
        os.environb[b"SL_TOKEN"] = b"secret\xff-token-of-some-length"
        self.addCleanup(os.environb.pop, b"SL_TOKEN")
        problem = one_error(self, "web: {token: '${SL_TOKEN}'}\nsources: []\n")
        self.assertIn("web: token (line 1): expected valid Unicode text", problem)
        self.assertNotIn("secret", problem)

    def test_the_original_macs_are_still_accepted(self):
        """53:75:31:..., the original SenseLink's prefix (its group bit is set)."""
        c = config.load_text(STATIC + "mac: 53:75:31:F6:4B:01\n", "cfg.yml")
        self.assertEqual(c.plugs["a"].options["mac"], "53:75:31:F6:4B:01")


class TextTypeTests(unittest.TestCase):
    def test_text_fields_take_yaml_text_only(self):
        for value, expected in [
            ("!!binary aGVsbG8=", "expected text, got b'hello' (bytes)"),
            ("!!set {a}", "expected text, got {'a'} (set); quote it"),
            ("12:30:00", "expected text, got 45000 (int) (written 12:30:00); quote it"),
            ("2024-01-02", "expected text, got datetime.date(2024, 1, 2) (date)"),
            ("0x1F", "expected text, got 31 (int) (written 0x1F); quote it"),
        ]:
            problem = one_error(self, STATIC + f"alias: {value}\n")
            self.assertIn(expected, problem)
        # A plain decimal number is the text written.
        c = config.load_text(STATIC + "alias: 1.50\n", "cfg.yml")
        self.assertEqual(c.plugs["a"].options["alias"], "1.50")
        c = config.load_text("sources:\n- static:\n    plugs:\n    - 7: {max_watts: 1}\n",
                             "cfg.yml")
        self.assertEqual(list(c.plugs), ["7"])

    def test_macs_and_device_ids_match_whole_values(self):
        for value, expected in [
            ('"53:75:31:BB:00:01\\n"', "expected a MAC address like 53:75:31:F6:4B:01"),
            ("FF:FF:FF:FF:FF:FF", "got FF:FF:FF:FF:FF:FF (the broadcast address)"),
            ("00:00:00:00:00:00", "got 00:00:00:00:00:00 (all zero)"),
        ]:
            problem = one_error(self, STATIC + f"mac: {value}\n")
            self.assertIn("a.mac: " + "expected", problem)
            self.assertIn(expected, problem)
            self.assertNotIn("\n", problem)
        problem = one_error(self, STATIC + 'device_id: "' + "A" * 40 + '\\n"\n')
        self.assertIn("a.device_id: expected 40 hexadecimal digits", problem)
        problem = one_error(self, 'device: {mac: "53:75:31:BB:00:01\\n"}\nsources: []\n')
        self.assertIn("device: mac: expected a MAC address", problem)

    def test_references_that_are_not_references_are_errors(self):
        os.environ["SL_BOUNDS_A"] = "x"
        self.addCleanup(os.environ.pop, "SL_BOUNDS_A")
        for written in ("${SL_BOUNDS_A:-x}", "${ SL_BOUNDS_A }", "${}", "${1A}", "${SL_BOUNDS_A"):
            problem = one_error(self, STATIC + f'alias: "pre {written} post"\n')
            self.assertIn("a.alias: ", problem)
            self.assertIn("is not a reference to an environment variable: write ${NAME}",
                          problem)
        c = config.load_text(STATIC + 'alias: "pre ${SL_BOUNDS_A} post"\n', "cfg.yml")
        self.assertEqual(c.plugs["a"].options["alias"], "pre x post")
