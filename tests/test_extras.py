"""Optional features: a config that needs an extra that is not installed names it."""

from importlib.util import find_spec

from twisted.trial import unittest

from senselink import extras
from senselink.config import ConfigError, load_text


def absent(*modules):
    def find(name, *args):
        return None if name in modules else find_spec(name, *args)
    return find


class ExtrasTests(unittest.TestCase):
    def test_installed_here(self):
        self.assertIsNone(extras.missing("tls"))
        self.assertIsNone(extras.missing("http"))

    def test_missing_names_the_extra(self):
        message = extras.missing("tls", find=absent("OpenSSL"))
        self.assertIn("pip install 'senselink-twisted[tls]'", message)

    def problems(self, text):
        with self.assertRaises(ConfigError) as caught:
            load_text(text, "x.yml")
        return str(caught.exception)

    def test_configs_that_need_a_missing_extra_say_so(self):
        plug = "    plugs:\n    - p: {power_keypath: power, mac: '53:75:31:00:00:01'}\n"
        self.patch(extras, "find_spec", absent("OpenSSL", "treq"))
        text = self.problems("sources:\n- http:\n    url: http://127.0.0.1/\n" + plug)
        self.assertIn("http sources need the 'http' extra", text)
        self.patch(extras, "find_spec", absent("OpenSSL"))
        text = self.problems("sources:\n- http:\n    url: https://127.0.0.1/\n" + plug)
        self.assertIn("x.yml:3: sources[0].http.url: TLS (https://", text)
        text = self.problems("sources:\n- hass:\n    url: wss://ha.example\n    auth_token: t\n"
                             "    plugs:\n    - p: {entity_id: light.a, mac: '53:75:31:00:00:01'}\n")
        self.assertIn("senselink-twisted[tls]", text)
        text = self.problems("web: {listen: 'ssl:8443:privateKey=k.pem'}\n"
                             "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n")
        self.assertIn("x.yml:1: web: listen", text)
        self.assertIn("senselink-twisted[tls]", text)
        # Plain http and ws need nothing more.
        load_text("sources:\n- hass:\n    url: ws://ha.example\n    auth_token: t\n"
                  "    plugs:\n    - p: {entity_id: light.a, mac: '53:75:31:00:00:01'}\n", "x.yml")
