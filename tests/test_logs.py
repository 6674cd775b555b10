"""Log lines say what happened with which plug, from which source, and the value."""

from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.plugs import Plug
from senselink.power import Feed, PowerModel
from tests.deploy_support import LogCapture


class LogLineTests(unittest.TestCase):

    def test_staleness_timeout_names_plug_source_and_value(self):
        logs = LogCapture(self)
        clock = Clock()
        plug = Plug("Dryer", mac="53:75:31:F6:4F:01", device_id="AB" * 20, kind="mqtt",
                    clock=clock)
        feed = Feed(plug, PowerModel(max_watts=3000, off_usage=2), clock, timeout=60)
        feed.power("1500")
        clock.advance(60)
        self.assertEqual(plug.watts, 2)
        self.assertIn("No update for Dryer from its mqtt source in 60 s: reporting off_usage 2.0 W",
                      logs.lines)


class LevelFilterTests(unittest.TestCase):
    """The level filters at the observer; Twisted's retry lines give way to ours."""

    def emitted(self, level, namespace, method):
        from twisted.logger import Logger as TwistedLogger
        from senselink.log import filtered, parse_level
        out = []
        getattr(TwistedLogger(namespace=namespace, observer=filtered(out.append,
                                                                      parse_level(level))),
                method)("x")
        return bool(out)

    def test_levels(self):
        self.assertFalse(self.emitted("WARNING", "twisted.internet.udp", "info"))
        self.assertTrue(self.emitted("WARNING", "senselink.daemon", "warn"))
        self.assertTrue(self.emitted("INFO", "senselink.daemon", "info"))
        self.assertFalse(self.emitted("INFO", "senselink.daemon", "debug"))
        self.assertTrue(self.emitted("DEBUG", "senselink.daemon", "debug"))

    def test_client_service_retry_lines_give_way_to_ours(self):
        namespace = "twisted.application._client_service.ClientService"
        for level in ("DEBUG", "INFO"):
            self.assertFalse(self.emitted(level, namespace, "info"), level)
        self.assertTrue(self.emitted("INFO", namespace, "warn"))


class WordingTests(unittest.TestCase):
    def problems(self, text):
        from senselink.config import ConfigError, load_text
        with self.assertRaises(ConfigError) as caught:
            load_text(text, "w.yml")
        return str(caught.exception).splitlines()

    def test_an_unset_environment_variable_is_one_line_naming_it_and_the_key(self):
        lines = self.problems(
            "sources:\n- hass:\n    url: ws://h\n    auth_token: ${SENSELINK_UNSET_TOKEN}\n"
            "    plugs:\n    - p: {entity_id: light.a, mac: '53:75:31:00:00:01'}\n")
        self.assertEqual(lines, ["w.yml:4: sources[0].hass.auth_token: environment variable "
                                 "SENSELINK_UNSET_TOKEN is not set (used as "
                                 "${SENSELINK_UNSET_TOKEN})"])

    def test_an_invalid_listen_is_shown_and_the_token_still_hidden(self):
        lines = self.problems("web:\n  listen: nonsense:1\n  token: a-secret-token-value\n"
                              "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n")
        self.assertEqual(len(lines), 1)
        self.assertIn("got 'nonsense:1'", lines[0])
        lines = self.problems("web:\n  listen: tcp:0\n  token: [a-secret-token-value]\n"
                              "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n")
        self.assertNotIn("a-secret-token-value", "\n".join(lines))
