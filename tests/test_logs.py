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
