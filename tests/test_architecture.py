"""docs/architecture.md is the map: it names every module of the package.

A module is named either by its path (`` `udp.py` ``, `` `sources/http.py` ``) or,
inside its package's row, by its stem in the package's list
(`` `kasa/` (`cipher`, `messages`, `device`) ``).
"""

import pathlib
import re

from twisted.trial import unittest

from tests.support import start_service

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "senselink"


def named_in(doc: str, module: pathlib.Path) -> bool:
    rel = module.relative_to(PACKAGE).as_posix()
    if f"`{rel}`" in doc or f"`{module.name}`" in doc:
        return True
    # In a package's row: `pkg/` (`a`, `b`, ...) or `pkg/` ... `stem` in the same line.
    parts = rel.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        package = "/".join(parts[:depth]) + "/"
        stem = "/".join(parts[depth:])[:-len(".py")]
        for line in doc.splitlines():
            if f"`{package}`" in line and re.search(rf"`{re.escape(stem)}(\.py)?`", line):
                return True
            if f"`{parts[depth - 1]}/`" in line and re.search(rf"`{re.escape(stem)}(\.py)?`",
                                                               line):
                return True
    return False


class MapTests(unittest.TestCase):

    def test_every_module_is_named(self):
        doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
        missing = [str(m.relative_to(PACKAGE)) for m in sorted(PACKAGE.rglob("*.py"))
                   if m.name != "__init__.py" and not named_in(doc, m)]
        self.assertEqual(missing, [], "docs/architecture.md does not name these modules")

    def test_the_check_sees_a_missing_module(self):
        self.assertFalse(named_in("| `udp.py` | ... |", PACKAGE / "guard.py"))
        self.assertTrue(named_in("| `kasa/` (`cipher`) |", PACKAGE / "kasa" / "cipher.py"))
        self.assertTrue(named_in("`sources/` ... `hass/` (`kind`, `cache`)",
                                 PACKAGE / "sources" / "hass" / "cache.py"))


def documented_api(doc: str) -> list:
    """The member names in the first column of the daemon API table."""
    section = doc.split("## The running daemon and its public API", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            names += [re.sub(r"\(.*", "", name) for name in re.findall(r"`([^`]+)`", first)]
    return names


class DaemonApiTests(unittest.TestCase):
    """The API table of docs/architecture.md names what the running daemon has."""

    def test_every_documented_member_exists(self):
        doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
        names = documented_api(doc)
        self.assertIn("set_power", names)
        daemon = start_service(self, "sources:\n- static:\n    plugs:\n    - a:\n"
                                     "        max_watts: 5\n")
        self.assertEqual([name for name in names if not hasattr(daemon, name)], [])
