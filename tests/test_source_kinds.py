"""Source kinds: every registered kind provides ISourceKind."""

from twisted.trial import unittest
from zope.interface.verify import verifyClass, verifyObject

from senselink.config import load_text
from senselink.sources import KINDS
from senselink.sources.kind import ISourceKind, SourceKind


class SourceKindInterfaceTests(unittest.TestCase):

    def test_every_registered_kind_provides_the_interface(self):
        self.assertEqual(sorted(KINDS), ["aggregate", "hass", "http", "mqtt", "mutable", "static"])
        for name in KINDS:
            kind = KINDS[name]
            self.assertTrue(verifyObject(ISourceKind, kind), name)
            self.assertEqual(kind.name, name)
            self.assertTrue(kind.doc, name)

    def test_base_class(self):
        self.assertTrue(verifyClass(ISourceKind, SourceKind))
        kind = SourceKind()
        self.assertTrue(verifyObject(ISourceKind, kind))
        self.assertEqual(kind.initial(None), (0.0, None))
        self.assertIsNone(kind.make_service(None, None, None))

    def test_initial_values(self):
        config = load_text("sources:\n"
                           "- static:\n    plugs:\n    - lamp: {max_watts: 60}\n"
                           "- mutable:\n    plugs:\n    - heater: {power: 750}\n"
                           "- aggregate:\n    plugs:\n    - both: {elements: [lamp, heater]}\n",
                           "k.yml")
        initial = {plug.id: KINDS[plug.kind].initial(plug) for plug in config.plugs.values()}
        self.assertEqual(initial, {"lamp": (60.0, True), "heater": (750.0, None),
                                   "both": (0.0, None)})
