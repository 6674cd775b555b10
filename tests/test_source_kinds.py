"""Source kinds: the interface every kind provides, and the mapping of kinds by name."""

import os
import subprocess
import sys

from twisted.trial import unittest
from zope.interface.verify import verifyClass, verifyObject

from senselink.config import load_text
from senselink.sources import REGISTRY, default_kinds
from senselink.sources.kind import ISourceKind, SourceKind
from senselink.sources.static import StaticKind

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class SourceKindInterfaceTests(unittest.TestCase):

    def test_every_registered_kind_provides_the_interface(self):
        kinds = default_kinds()
        self.assertEqual(sorted(kinds), ["aggregate", "hass", "http", "mqtt", "mutable", "static"])
        for name in kinds:
            kind = kinds[name]
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
        kinds = default_kinds()
        initial = {plug.id: kinds[plug.kind].initial(plug) for plug in config.plugs.values()}
        self.assertEqual(initial, {"lamp": (60.0, True), "heater": (750.0, None),
                                   "both": (0.0, None)})


class DefaultKindsTests(unittest.TestCase):

    def test_a_new_mapping_each_call(self):
        one, two = default_kinds(), default_kinds()
        self.assertIsNot(one, two)
        self.assertIsNot(one["static"], two["static"])
        self.assertIs(one["static"], one["static"])

    def test_read_only(self):
        kinds = default_kinds()
        with self.assertRaises(TypeError):
            kinds["other"] = StaticKind()
        with self.assertRaises(TypeError):
            REGISTRY["other"] = ("senselink.sources.static", "StaticKind")

    def test_extra_kinds(self):
        class Extra(SourceKind):
            name = "extra"
        extra = Extra()
        kinds = default_kinds({"extra": extra})
        self.assertIs(kinds["extra"], extra)
        self.assertIn("extra", kinds)
        self.assertEqual(len(kinds), len(REGISTRY) + 1)
        self.assertNotIn("extra", default_kinds())
        config = load_text("sources:\n- extra:\n    plugs:\n    - e: {}\n", "k.yml", kinds)
        self.assertEqual(config.plugs["e"].kind, "extra")

    def test_loading_a_config_imports_only_what_it_uses(self):
        """A static config loads no other kind, nor the daemon's runtime modules."""
        code = ("import sys\n"
                "from senselink import config\n"
                "config.load_text('sources:\\n- static:\\n    plugs:\\n    - a: {max_watts: 1}\\n')\n"
                "print(' '.join(sorted(m for m in sys.modules if m.startswith(('senselink', "
                "'autobahn', 'OpenSSL')))))\n")
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                                text=True, timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
        self.assertEqual(result.returncode, 0, result.stderr)
        loaded = set(result.stdout.split())
        self.assertIn("senselink.sources.static", loaded)
        for module in ("senselink.sources.hass", "senselink.sources.mqtt", "senselink.sources.http",
                       "senselink.web", "senselink.guard", "senselink.strip", "senselink.energy",
                       "senselink.service", "autobahn", "OpenSSL"):
            self.assertNotIn(module, loaded)
