"""The protocol rooms and the sessions have no I/O: no Twisted, no Autobahn, no sockets.

Read from the source (the modules' own imports and, transitively, those of the
project's modules they import; a package's C{__init__} is not followed, as
importing a package for one pure module is an accident of layout).
"""

import ast
import pathlib

from twisted.trial import unittest

ROOT = pathlib.Path(__file__).resolve().parent.parent
IO = ("twisted", "autobahn", "treq", "zope", "socket", "selectors", "asyncio", "ssl")

PURE = ("senselink.kasa.cipher", "senselink.kasa.messages", "senselink.kasa.device",
        "senselink.mqtt.packets", "senselink.mqtt.encode", "senselink.mqtt.decode",
        "senselink.mqtt.topics", "senselink.mqttsession", "senselink.sessionoutputs",
        "senselink.sources.mqtt.session", "senselink.publish.session",
        "senselink.sources.hass.session", "senselink.sources.hass.events",
        "senselink.sources.hass.following", "senselink.sources.hass.messages",
        "senselink.sources.hass.cache", "senselink.reloadplan")


def module_path(name):
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else None


def imports_of(name):
    tree = ast.parse(module_path(name).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def io_imports(name):
    """(importer, imported) pairs of I/O modules reached from C{name}."""
    seen, todo, found = set(), [name], []
    while todo:
        current = todo.pop()
        if current in seen or module_path(current) is None:
            continue
        seen.add(current)
        for imported in imports_of(current):
            if imported.split(".")[0] in IO:
                found.append((current, imported))
            elif imported.startswith("senselink."):
                todo.append(imported)
    return found


class SansIOTests(unittest.TestCase):

    def test_pure_rooms_import_no_io(self):
        problems = {name: io_imports(name) for name in PURE if module_path(name) is not None}
        self.assertEqual({k: v for k, v in problems.items() if v}, {})
        self.assertEqual([name for name in PURE if module_path(name) is None], [])

    def test_the_check_sees_io(self):
        self.assertIn(("senselink.sessiondriver", "zope.interface"),
                      io_imports("senselink.sessiondriver"))
