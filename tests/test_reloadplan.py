"""reloadplan.plan(old, new) is pure: table tests on two configs each, no reactor, no daemon."""

from twisted.trial import unittest

from senselink.reloadplan import PlugChange, ReloadPlan, SourceChange, plan
from tests.support import config_from_text

BASE = """\
state_file: false
web: {listen: "tcp:8080:interface=127.0.0.1"}
sources:
  - static:
      plugs:
        - Lamp: {alias: Lamp, mac: "53:75:31:F6:5A:01", max_watts: 40}
        - Fan: {mac: "53:75:31:F6:5A:02", max_watts: 20}
  - mutable:
      plugs:
        - Heater: {mac: "53:75:31:F6:5A:03", power: 5}
  - mqtt:
      host: 127.0.0.1
      plugs:
        - Dryer: {mac: "53:75:31:F6:5A:04", power_topic: home/dryer/power}
"""


def edited(*pairs, text=BASE):
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new)
    return text


# (what, new config text, expected fields of the plan; every other field as for no change)
CASES = [
    ("nothing changed", BASE, {}),
    ("a plug added", edited(('        - Fan: {mac: "53:75:31:F6:5A:02", max_watts: 20}\n',
                             '        - Fan: {mac: "53:75:31:F6:5A:02", max_watts: 20}\n'
                             '        - TV: {mac: "53:75:31:F6:5A:05", max_watts: 90}\n')),
     {"plugs_added": ("TV",), "sources_replaced": (SourceChange(0, 0, (), ("TV",)),),
      "sources_kept": ((1, 1), (2, 2))}),
    ("a plug removed", edited(('        - Fan: {mac: "53:75:31:F6:5A:02", max_watts: 20}\n',
                               '')),
     {"plugs_removed": ("Fan",), "sources_replaced": (SourceChange(0, 0, (), ("Fan",)),),
      "sources_kept": ((1, 1), (2, 2))}),
    ("a plug renamed (a new alias)", edited(("alias: Lamp", "alias: Desk Lamp")),
     {"plugs_changed": (PlugChange("Lamp", ("alias",), alias=("Lamp", "Desk Lamp")),),
      "sources_replaced": (SourceChange(0, 0, (), ("Lamp",)),),
      "sources_kept": ((1, 1), (2, 2))}),
    ("a new MAC: a new plug object", edited(("F6:5A:01", "F6:5A:11")),
     {"plugs_changed": (PlugChange("Lamp", ("device_id", "mac"), rebuilt=True),),
      "sources_replaced": (SourceChange(0, 0, (), ("Lamp",)),),
      "sources_kept": ((1, 1), (2, 2))}),
    ("a static plug's power: reset", edited(("max_watts: 40", "max_watts: 60")),
     {"plugs_changed": (PlugChange("Lamp", ("max_watts",), reset=True),),
      "sources_replaced": (SourceChange(0, 0, (), ("Lamp",)),),
      "sources_kept": ((1, 1), (2, 2))}),
    ("a changed kind: static to mutable",
     edited(('        - Fan: {mac: "53:75:31:F6:5A:02", max_watts: 20}\n', ''),
            ('        - Heater: {mac: "53:75:31:F6:5A:03", power: 5}\n',
             '        - Heater: {mac: "53:75:31:F6:5A:03", power: 5}\n'
             '        - Fan: {mac: "53:75:31:F6:5A:02", power: 20}\n')),
     {"plugs_changed": (PlugChange("Fan", ("max_watts", "power", "restore"),
                                   ("static", "mutable"), reset=True),),
      "sources_replaced": (SourceChange(0, 0, (), ("Fan",)),
                           SourceChange(1, 1, (), ("Fan",))),
      "sources_kept": ((2, 2),)}),
    ("a source moved to another broker", edited(("host: 127.0.0.1", "host: 127.0.0.2")),
     {"sources_replaced": (SourceChange(2, 2, ("host",), ()),),
      "sources_kept": ((0, 0), (1, 1))}),
    ("a source removed, another added",
     edited(("  - mqtt:\n      host: 127.0.0.1\n      plugs:\n"
             '        - Dryer: {mac: "53:75:31:F6:5A:04", power_topic: home/dryer/power}\n',
             "  - static:\n      plugs:\n"
             '        - Kettle: {mac: "53:75:31:F6:5A:06", max_watts: 2000}\n')),
     {"plugs_added": ("Kettle",), "plugs_removed": ("Dryer",), "sources_stopped": (2,),
      "sources_started": (2,), "sources_kept": ((0, 0), (1, 1))}),
    ("the web listener moved", edited(("tcp:8080", "tcp:8081")),
     {"sections": ("web",), "listeners_moved": ("web",)}),
    ("a new token: the web section changed, its listener stays",
     edited(('web: {listen: "tcp:8080:interface=127.0.0.1"}',
             'web: {listen: "tcp:8080:interface=127.0.0.1", token: a-token-of-enough-length}')),
     {"sections": ("web",)}),
    ("the web interface off", edited(('web: {listen: "tcp:8080:interface=127.0.0.1"}\n', '')),
     {"sections": ("web",), "listeners_moved": ("web",)}),
    ("top-level sections", edited(("state_file: false\n",
                                   "state_file: false\ntarget: 127.0.0.2\nrate_limit: false\n")),
     {"sections": ("rate_limit", "target")}),
]

UNCHANGED = {"plugs_unchanged": ("Lamp", "Fan", "Heater", "Dryer"),
             "sources_kept": ((0, 0), (1, 1), (2, 2))}


class PlanTests(unittest.TestCase):
    def test_table(self):
        old = config_from_text(BASE)
        for what, text, expected in CASES:
            new = config_from_text(text)
            got = plan(old, new)
            changed = {c.id for c in expected.get("plugs_changed", ())}
            gone = set(expected.get("plugs_added", ())) | set(expected.get("plugs_removed", ()))
            fields = dict(UNCHANGED, plug_ids=tuple(new.plugs), **expected)
            fields["plugs_unchanged"] = tuple(
                i for i in new.plugs if i not in changed and i not in gone)
            self.assertEqual(got, ReloadPlan(**fields), what)

    def test_kept_and_rebuilt(self):
        old = config_from_text(BASE)
        got = plan(old, config_from_text(edited(("F6:5A:01", "F6:5A:11"),
                                                ("alias: Lamp", "alias: Desk Lamp"))))
        self.assertEqual(got.plugs_rebuilt, ("Lamp",))
        self.assertEqual(got.plugs_kept, ("Fan", "Heater", "Dryer"))
        self.assertEqual(got.sources_to_stop, (0,))
        self.assertEqual(got.sources_to_start, (0,))
        self.assertTrue(plan(old, old).changes_nothing)
        self.assertFalse(got.changes_nothing)

    def test_an_aggregate_and_its_elements(self):
        text = BASE + """\
  - aggregate:
      plugs:
        - Both: {mac: "53:75:31:F6:5A:07", elements: [Lamp, Fan]}
"""
        old = config_from_text(text)
        got = plan(old, config_from_text(edited(("elements: [Lamp, Fan]", "elements: [Lamp]"),
                                                text=text)))
        self.assertEqual(got.plugs_changed, (PlugChange("Both", ("elements",)),))
        self.assertEqual(got.plugs_kept, ("Lamp", "Fan", "Heater", "Dryer", "Both"))
        self.assertEqual(got.sources_replaced, (SourceChange(3, 3, (), ("Both",)),))
        # An aggregate that becomes a plain plug is a new object.
        got = plan(old, config_from_text(edited(
            ('        - Both: {mac: "53:75:31:F6:5A:07", elements: [Lamp, Fan]}',
             '        - Both: {mac: "53:75:31:F6:5A:07", max_watts: 1}'),
            ("  - aggregate:", "  - static:"), text=text)))
        self.assertEqual(got.plugs_rebuilt, ("Both",))
