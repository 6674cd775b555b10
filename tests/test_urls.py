"""safe_url: the one way URLs reach logs, status pages and config errors."""

from twisted.trial import unittest

from senselink.config import ConfigError, load_text
from senselink.urls import UNPARSABLE, safe_url


class SafeUrlTests(unittest.TestCase):

    def test_credentials_query_and_fragment_are_dropped(self):
        self.assertEqual(safe_url("https://a:b@example.net:8443/x/y?k=v#f"),
                         "https://example.net:8443/x/y")
        self.assertEqual(safe_url("ws://user@hass:8123/api/websocket"),
                         "ws://hass:8123/api/websocket")
        self.assertEqual(safe_url("http://u:p@ss@meter/"), "http://meter/")

    def test_hosts(self):
        self.assertEqual(safe_url("http://[::1]:80/"), "http://[::1]:80/")
        self.assertEqual(safe_url("HTTP://Meter.Local/x"), "http://meter.local/x")
        self.assertEqual(safe_url("hass.local:8123"), "hass.local:8123")

    def test_unparsable_urls_show_no_password(self):
        # A '/' or '?' in the password: urlsplit reads "u:pass" as host and port.
        self.assertEqual(safe_url("ws://u:pass/word@hass:8123/"), UNPARSABLE)
        self.assertEqual(safe_url("http://u:pa?ss@meter/"), UNPARSABLE)
        self.assertEqual(safe_url("http://u:pw@[::1/"), UNPARSABLE)
        # Without an '@' there is nothing to hide but the query.
        self.assertEqual(safe_url("ws://hass:abc/x?token=secret#f"), "ws://hass:abc/x")
        self.assertEqual(safe_url("http://[::1/"), "http://[::1/")

    def test_config_errors_of_both_sources(self):
        for text, shown in [
            ("- hass:\n    url: ftp://u:secret@hass/\n    auth_token: abc\n"
             "    plugs:\n    - P:\n        entity_id: light.x\n", "'ftp://hass/'"),
            ("- hass:\n    url: ws://u:secret/x@hass:80\n    auth_token: abc\n"
             "    plugs:\n    - P:\n        entity_id: light.x\n", repr(UNPARSABLE)),
            ("- http:\n    url: ftp://u:secret@meter/?key=secret2\n    plugs:\n    - P: {}\n",
             "'ftp://meter/'"),
        ]:
            with self.assertRaises(ConfigError) as caught:
                load_text("sources:\n" + text, "c.yml")
            message = str(caught.exception)
            self.assertIn(shown, message)
            self.assertNotIn("secret", message)
