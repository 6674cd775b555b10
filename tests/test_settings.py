"""Typed settings: config/ turns YAML into frozen settings objects, and the rest of the
program reads their attributes, never an option by name."""

import ast
import dataclasses
import os

from twisted.trial import unittest

from senselink import config, sources
from senselink.config.schema import DaemonSettings, PlugSettings
from senselink.config.sections import RateLimit, StripIdentity, WebOptions
from senselink.config.settings import FIELD, differences, field_table, values

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "senselink")


def module_files():
    """Module name -> file, for every module of the package."""
    out = {}
    for directory, _, names in os.walk(PACKAGE):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                out[os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")] = path
    return out


def option_reads(path):
    """C{line: what} for each read of a config option by name in the module at C{path}:
    an attribute named C{options} (a config object's validated dict), or a call of
    C{from_options}."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("options", "from_options"):
            found.append(f"{node.lineno}: .{node.attr}")
    return found


class NoOptionByNameTests(unittest.TestCase):
    def test_no_module_outside_config_reads_options(self):
        config_dir = os.path.join(PACKAGE, "config") + os.sep
        found = []
        for module, path in sorted(module_files().items()):
            if path.startswith(config_dir):
                continue
            found += [f"{module}:{where}" for where in option_reads(path)]
        self.assertEqual(found, [])

    def test_the_check_finds_them(self):
        path = os.path.join(self.mktemp())
        with open(path, "w", encoding="utf-8") as f:
            f.write("x = plug.options['mac']\nm = PowerModel.from_options(o)\nopts = options\n")
        self.assertEqual(option_reads(path), ["1: .options", "2: .from_options"])


class FrozenSettingsTests(unittest.TestCase):
    def load(self, text):
        return config.load_text(text, "cfg.yml")

    def test_every_kind_declares_frozen_dataclasses(self):
        for kind in sources.default_kinds().values():
            for cls in (kind.plug_settings, getattr(kind, "source_settings", None)):
                if cls is None:
                    continue
                self.assertTrue(dataclasses.is_dataclass(cls), cls)
                self.assertTrue(cls.__dataclass_params__.frozen, cls)
                self.assertTrue(all(FIELD in f.metadata for f in dataclasses.fields(cls)), cls)
            self.assertTrue(issubclass(kind.plug_settings, PlugSettings), kind.name)

    def test_top_level_defaults_are_declared_once_and_typed(self):
        c = self.load("sources: []\n")
        s = c.settings
        self.assertIsInstance(s, DaemonSettings)
        self.assertEqual(s.state_save_interval, 60.0)
        self.assertEqual(s.max_plug_watts, 100000.0)
        self.assertIsInstance(s.rate_limit, RateLimit)
        self.assertEqual(s.rate_limit.burst, 20.0)
        self.assertIsInstance(s.device, StripIdentity)
        self.assertEqual(s.device.alias, "SenseLink")
        self.assertIsNone(s.web)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            s.max_plug_watts = 5.0
        self.assertEqual(field_table(DaemonSettings)["state_save_interval"].default, 60.0)

    def test_sections_are_typed(self):
        c = self.load("web: {listen: 'tcp:0:interface=127.0.0.1', token: abcdefghijklmnopq}\n"
                      "rate_limit: false\ndevice: {alias: Strip}\nsources: []\n")
        self.assertIsInstance(c.settings.web, WebOptions)
        self.assertEqual(c.settings.web.token, "abcdefghijklmnopq")
        self.assertIs(c.settings.rate_limit, False)
        self.assertEqual(c.settings.device.alias, "Strip")
        with self.assertRaises(dataclasses.FrozenInstanceError):
            c.settings.web.token = "x"

    def test_plug_kinds_own_their_behaviour(self):
        c = self.load("sources:\n- mutable:\n    plugs:\n"
                      "    - heater: {power: 750, max_watts: 1500, min_watts: 2}\n"
                      "    - fan: {power: 30}\n"
                      "- aggregate:\n    plugs:\n    - room: {elements: [heater, fan]}\n")
        heater, fan, room = (c.plugs[i].settings for i in ("heater", "fan", "room"))
        self.assertTrue(heater.settable and fan.settable)
        self.assertFalse(room.settable)
        self.assertEqual(heater.switch_watts(True), 1500.0)
        self.assertEqual(heater.switch_watts(False), 2.0)
        self.assertEqual(fan.switch_watts(True), 30.0)
        self.assertEqual(room.elements, ("heater", "fan"))
        self.assertEqual(heater.elements, ())
        self.assertEqual(c.aggregate_of("fan"), "room")

    def test_differences_and_values(self):
        a = self.load("sources: []\n").settings
        b = self.load("state_save_interval: 30\ntarget: 127.0.0.9\nsources: []\n").settings
        self.assertEqual(differences(a, b), ["state_save_interval", "target"])
        self.assertEqual(values(a), values(self.load("sources: []\n").settings))


class SecretsTests(unittest.TestCase):
    def test_no_secret_in_a_settings_repr(self):
        os.environ["SL_REPR_SECRET"] = "header-secret-4711"
        self.addCleanup(os.environ.pop, "SL_REPR_SECRET")
        c = config.load_text(
            "publish: {host: 127.0.0.1, username: u, password: pw-secret-4711}\n"
            "sources:\n"
            "- hass: {url: 'ws://127.0.0.1:1', auth_token: token-secret-4711, plugs: []}\n"
            "- mqtt: {host: 127.0.0.1, username: u, password: mqtt-secret-4711, plugs: []}\n"
            "- http:\n    url: http://127.0.0.1:1/x\n"
            "    headers: {X-Api-Key: '${SL_REPR_SECRET}'}\n    plugs: []\n", "cfg.yml")
        shown = repr(c.settings) + "".join(repr(source.settings) for source in c.sources)
        self.assertIn("HassSourceSettings(", shown)
        self.assertNotIn("secret-4711", shown)
        # The values are there to use.
        self.assertEqual(c.sources[0].settings.auth_token, "token-secret-4711")
        self.assertEqual(c.sources[2].settings.headers, {"X-Api-Key": "header-secret-4711"})
