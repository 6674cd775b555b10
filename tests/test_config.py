import dataclasses
import os
import subprocess
import sys

import yaml
from twisted.trial import unittest

from senselink import config
from senselink.config import yamlmarks
from senselink.plugs import derive_device_id, derive_mac
from tests.support import config_from_text

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ORIGINAL = """\
target: 127.0.0.5
sources:
  - static:
      plugs:
      - NAS:
          mac: 53:75:31:f6:4c:01
          max_watts: 15
          alias: "NAS Server"
      - Fan:
          mac: 50:12:34:56:01:02
          max_watts: 5
          skip_rate: 2
  - mutable:
      plugs:
      - Heater:
          mac: 53:75:31:f6:4c:03
          power: 750
  - aggregate:
      plugs:
      - Both:
          mac: 53:75:31:f6:4c:04
          elements: [NAS, Fan]
"""


def errors_of(text):
    try:
        config.load_text(text, "cfg.yml")
    except config.ConfigError as e:
        return e.problems
    raise AssertionError("config was accepted")


class ValidConfigTests(unittest.TestCase):
    def test_original_format(self):
        c = config.load_text(ORIGINAL, "cfg.yml")
        self.assertEqual(list(c.plugs), ["NAS", "Fan", "Heater", "Both"])
        self.assertEqual(c.target, "127.0.0.5")
        self.assertEqual(c.plugs["NAS"].settings.mac, "53:75:31:F6:4C:01")
        # An all-digit MAC is a sexagesimal number in YAML 1.1: the text as written is used.
        self.assertEqual(c.plugs["Fan"].settings.mac, "50:12:34:56:01:02")
        self.assertEqual(c.plugs["Fan"].settings.skip_rate, 2)
        self.assertEqual([p.id for p in c.reported()], ["Heater", "Both"])
        self.assertEqual(c.aggregate_of("NAS"), "Both")
        self.assertEqual(c.plugs["NAS"].settings.device_id, derive_device_id("53:75:31:F6:4C:01"))
        self.assertEqual(c.warnings, [])

    def test_example_configs_are_valid(self):
        for name in ("config_example.yml", "examples/demo.yml"):
            path = os.path.join(ROOT, name)
            c = config.load(path)
            self.assertTrue(c.plugs, name)

    def test_unquoted_on_off_state_values(self):
        c = config.load_text(
            "sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n", "cfg.yml")
        self.assertTrue(c.plugs)
        convert = config.MODEL_FIELDS["on_state_value"].convert
        self.assertEqual(convert(True, "on"), "on")
        self.assertEqual(convert(False, "off"), "off")
        self.assertEqual(convert(True, "ON"), "ON")
        self.assertEqual(convert("idle", "idle"), "idle")

    def test_env_substitution(self):
        os.environ["SENSELINK_TEST_ALIAS"] = "From Env"
        self.addCleanup(os.environ.pop, "SENSELINK_TEST_ALIAS")
        c = config.load_text(
            "sources:\n- static:\n    plugs:\n    - a: {alias: '${SENSELINK_TEST_ALIAS}'}\n", "cfg.yml")
        self.assertEqual(c.plugs["a"].settings.alias, "From Env")

    def test_missing_env_is_an_error(self):
        problems = errors_of(
            "sources:\n- static:\n    plugs:\n    - a: {alias: '${SENSELINK_NOT_SET_X}'}\n")
        self.assertIn("SENSELINK_NOT_SET_X is not set", problems[0])
        self.assertTrue(problems[0].startswith("cfg.yml:4: "), problems)

    def test_derived_mac_is_stable_and_warned(self):
        c1 = config.load_text("sources:\n- static:\n    plugs:\n    - Lamp: {max_watts: 1}\n", "a.yml")
        c2 = config.load_text("sources:\n- static:\n    plugs:\n    - Lamp: {max_watts: 9}\n", "b.yml")
        self.assertEqual(c1.plugs["Lamp"].settings.mac, c2.plugs["Lamp"].settings.mac)
        self.assertEqual(c1.plugs["Lamp"].settings.mac, derive_mac("Lamp"))
        self.assertEqual(len(c1.plugs["Lamp"].settings.device_id), 40)
        self.assertIn("has no mac", c1.warnings[0])

    def test_more_than_twenty_reported_plugs_warns(self):
        plugs = "".join(f"    - p{i}: {{max_watts: 1}}\n" for i in range(21))
        c = config.load_text("sources:\n- static:\n    plugs:\n" + plugs, "cfg.yml")
        self.assertTrue(any("21 plugs are reported" in w for w in c.warnings))

    def test_validation_context_is_a_declared_field(self):
        """Plugs and sources carry the context of their settings as a declared field."""
        c = config.load_text(ORIGINAL, "cfg.yml")
        for cls in (config.PlugConfig, config.SourceConfig):
            where = {f.name: f for f in dataclasses.fields(cls)}["where"]
            self.assertFalse(where.repr or where.compare, cls)
        plug, source = c.plugs["NAS"], c.sources[0]
        self.assertEqual((plug.where.path, plug.where.line, plug.where.name),
                         ("cfg.yml", 5, "sources[0].static.plugs[0].NAS"))
        self.assertEqual((source.where.line, source.where.name), (3, "sources[0].static"))
        self.assertNotIn("_where", vars(plug))
        self.assertNotIn("where", repr(plug))

    def test_nested_aggregates(self):
        c = config_from_text("""
sources:
- static:
    plugs:
    - a: {max_watts: 1}
    - b: {max_watts: 2}
- aggregate:
    plugs:
    - inner: {elements: [a, b]}
- aggregate:
    plugs:
    - outer: {elements: [inner]}
""")
        self.assertEqual([p.id for p in c.reported()], ["outer"])


class ConfigErrorTests(unittest.TestCase):
    def test_error_names_file_line_and_key(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a:\n        max_watts: lots\n")
        self.assertEqual(problems, [
            "cfg.yml:5: sources[0].static.plugs[0].a.max_watts: expected a number from 0 to 1000000000 W, got 'lots' (str)"])

    def test_unknown_key_suggests(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a:\n        max_wats: 3\n")
        self.assertIn("cfg.yml:5:", problems[0])
        self.assertIn("did you mean 'max_watts'?", problems[0])

    def test_unknown_top_level_key_and_kind(self):
        problems = errors_of("sorces: []\n")
        self.assertTrue(any("did you mean 'sources'" in p for p in problems), problems)
        problems = errors_of("sources:\n- statik:\n    plugs: []\n")
        self.assertIn("cfg.yml:2:", problems[0])
        self.assertIn("did you mean 'static'", problems[0])

    def test_missing_sources(self):
        self.assertIn("missing required key 'sources'", errors_of("target: 1.2.3.4\n")[0])

    def test_not_a_mapping(self):
        self.assertIn("expected a mapping", errors_of("- 1\n")[0])
        self.assertIn("expected a mapping", errors_of("")[0])

    def test_bad_yaml(self):
        problems = errors_of("sources:\n  - static: [\n")
        self.assertIn("not valid YAML", problems[0])
        self.assertTrue(problems[0].startswith("cfg.yml:"))

    def test_tab_is_named(self):
        """libyaml parses, but the error says what the character is (the pure parser's text)."""
        problems = errors_of("sources:\n  - static:\n\t  plugs: []\n")
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("cfg.yml:3: not valid YAML", problems[0])
        self.assertIn("'\\t'", problems[0])

    def test_parsed_by_libyaml_with_lines(self):
        self.assertTrue(issubclass(config.FastLoader, yaml.CSafeLoader))   # PyYAML wheels have it
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a: {max_watts: lots}\n")
        self.assertTrue(problems[0].startswith("cfg.yml:4:"), problems)

    def test_duplicate_mac_names_both(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n"
                             "    - one: {mac: 'aa:bb:cc:dd:ee:ff'}\n"
                             "    - two: {mac: 'AA-BB-CC-DD-EE-FF'}\n")
        self.assertIn("'one'", problems[0])
        self.assertIn("'two'", problems[0])
        self.assertIn("same MAC AA:BB:CC:DD:EE:FF", problems[0])

    def test_duplicate_plug_id(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a: {}\n- mutable:\n"
                             "    plugs:\n    - a: {}\n")
        self.assertIn("plug id 'a' is already used at line 4", problems[0])

    def test_aggregate_errors(self):
        base = "sources:\n- static:\n    plugs:\n    - a: {}\n    - b: {}\n- aggregate:\n    plugs:\n"
        self.assertIn("unknown plug 'zz'", errors_of(base + "    - g: {elements: [a, zz]}\n")[0])
        self.assertIn("'a' is in two aggregates: 'g' and 'h'",
                      errors_of(base + "    - g: {elements: [a]}\n    - h: {elements: [a]}\n")[0])
        self.assertIn("contains itself", errors_of(base + "    - g: {elements: [g]}\n")[0])
        cycle = errors_of(base + "    - g: {elements: [h]}\n    - h: {elements: [g]}\n")
        self.assertIn("cycle", cycle[0])
        self.assertIn("missing required key 'elements'", errors_of(base + "    - g: {}\n")[0])

    def test_bad_values(self):
        base = "sources:\n- static:\n    plugs:\n    - a:\n        "
        self.assertIn("expected a MAC", errors_of(base + "mac: nope\n")[0])
        self.assertIn("40 hexadecimal", errors_of(base + "device_id: abc\n")[0])
        self.assertIn("expected a whole number from 0 to 1000, got -1", errors_of(base + "skip_rate: -1\n")[0])
        self.assertIn("expected a number from 0 to 1, got 2", errors_of(base + "on_fraction: 2\n")[0])
        self.assertIn("expected the plug's settings", errors_of("sources:\n- static:\n    plugs:\n    - a:\n")[0])

    def test_several_problems_reported_together(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a: {max_watts: x}\n"
                             "    - b: {min_watts: y}\n")
        self.assertEqual(len(problems), 2)

    def test_unreadable_file(self):
        try:
            config.load("/nonexistent/senselink.yml")
        except config.ConfigError as e:
            self.assertIn("/nonexistent/senselink.yml: cannot read config", str(e))
        else:
            self.fail("no error")


DUPLICATES = """\
sources:
- static:
    plugs:
    - a: {max_watts: 1}
target: 127.0.0.1
sources:
- static:
    plugs:
    - b:
        max_watts: 1
        max_watts: 2
      b: {max_watts: 3, max_watts: 4}
"""


class DuplicateKeyTests(unittest.TestCase):
    """YAML keys are unique in a mapping: a second one is an error, not a silent overwrite."""

    def test_duplicates_are_named_with_both_lines(self):
        self.assertEqual(errors_of(DUPLICATES), [
            "cfg.yml:6: sources: duplicate key 'sources' (first at line 1)",
            "cfg.yml:11: sources[0].static.plugs[0].b.max_watts: duplicate key 'max_watts' "
            "(first at line 10)",
            "cfg.yml:12: sources[0].static.plugs[0].b: duplicate key 'b' (first at line 9)",
            "cfg.yml:12: sources[0].static.plugs[0].b.max_watts: duplicate key 'max_watts' "
            "(first at line 12)",
        ])

    def test_other_problems_are_reported_too(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n"
                             "    - a: {max_watts: 1, max_watts: x}\n")
        self.assertEqual(problems, [
            "cfg.yml:4: sources[0].static.plugs[0].a.max_watts: duplicate key 'max_watts' "
            "(first at line 4)",
            "cfg.yml:4: sources[0].static.plugs[0].a.max_watts: expected a number from 0 to 1000000000 W, got 'x' (str)",
        ])

    def test_every_repetition_names_the_first(self):
        problems = errors_of("sources: []\ntarget: a\ntarget: b\ntarget: c\n")
        self.assertEqual(problems, ["cfg.yml:3: target: duplicate key 'target' (first at line 2)",
                                    "cfg.yml:4: target: duplicate key 'target' (first at line 2)"])

    def test_both_loaders_find_them(self):
        for loader in (yamlmarks.FastLoader, yamlmarks.PureLoader):
            document, duplicates = yamlmarks._read(loader, DUPLICATES)
            self.assertEqual([(d.key, d.first, d.line) for d in duplicates],
                             [("sources", 1, 6), ("max_watts", 10, 11), ("b", 9, 12),
                              ("max_watts", 12, 12)], loader)
            self.assertEqual(document["sources"][0]["static"]["plugs"][0]["b"]["max_watts"], 4)

    def test_merge_keys_may_be_overridden(self):
        document, duplicates = yamlmarks.read_yaml(
            "base: &base {max_watts: 5, min_watts: 1}\n"
            "other: &other {max_watts: 7}\n"
            "a: {<<: *base, max_watts: 9}\n"
            "b: {<<: [*base, *other], alias: B}\n"
            "c: {<<: *base, max_watts: 9, max_watts: 10}\n")
        self.assertEqual(document["a"], {"max_watts": 9, "min_watts": 1})
        self.assertEqual(document["b"], {"max_watts": 5, "min_watts": 1, "alias": "B"})
        self.assertEqual([(d.key, d.first, d.line) for d in duplicates], [("max_watts", 5, 5)])

    def test_merge_keys_follow_the_spec_in_both_loaders(self):
        """Of a merged list, the earlier mapping wins; the mapping's own keys win over all
        merged ones; merges nest. PyYAML 6.0.3 and 6.0.4 disagree on the list, so the
        loader defines it itself (this test passes under both)."""
        text = ("a: &a {max_watts: 5}\n"
                "c: &c {max_watts: 7, min_watts: 2}\n"
                "b:\n  <<: [*a, *c]\n"
                "d: {<<: [*c, *a]}\n"
                "e: {<<: {<<: *c, alias: E}, min_watts: 3}\n"
                "f: {<<: [*a, *c], max_watts: 1}\n"
                "g: {=: 1}\n")
        for loader in (yamlmarks.FastLoader, yamlmarks.PureLoader):
            document, duplicates = yamlmarks._read(loader, text)
            self.assertEqual(document["b"], {"max_watts": 5, "min_watts": 2}, loader)
            self.assertEqual(document["d"], {"max_watts": 7, "min_watts": 2}, loader)
            self.assertEqual(document["e"], {"max_watts": 7, "min_watts": 3, "alias": "E"}, loader)
            self.assertEqual(document["f"], {"max_watts": 1, "min_watts": 2}, loader)
            self.assertEqual(document["g"], {"=": 1}, loader)
            self.assertEqual(duplicates, [], loader)
            # The anchors themselves are left as written.
            self.assertEqual(document["c"], {"max_watts": 7, "min_watts": 2}, loader)

    def test_a_merge_of_something_else_is_an_error_with_its_line(self):
        for value in ("3", "[3]", "[*a, [1]]"):
            problems = errors_of("a: &a {max_watts: 5}\nsources:\n  - {<<: " + value + "}\n")
            self.assertEqual(len(problems), 1, problems)
            self.assertIn("cfg.yml:3", problems[0])
            self.assertIn("a merge key (<<) takes a mapping or a list of mappings", problems[0])

    def test_check_command_reports_them(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(DUPLICATES)
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{path}:6: sources: duplicate key 'sources' (first at line 1)",
                      result.stderr)
        self.assertNotIn("valid;", result.stdout)


BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
sources: *i
"""


def many_plugs(n=200):
    """A config of C{n} plugs of every kind that needs no connection, with a few aliases."""
    lines = ["sources:", "- static:", "    plugs:"]
    for i in range(n // 2):
        merge = "&defaults {min_watts: 0.5, skip_rate: 1}" if i == 0 else "*defaults"
        lines += [f"    - s{i}:", f"        <<: {merge}", f"        alias: Static {i}",
                  f"        mac: 53:75:31:00:{i // 256:02X}:{i % 256:02X}", f"        max_watts: {i + 1}"]
    lines += ["- mutable:", "    plugs:"]
    for i in range(n // 2):
        lines += [f"    - m{i}:", f"        alias: Mutable {i}",
                  f"        mac: 53:75:31:01:{i // 256:02X}:{i % 256:02X}", f"        power: {i}"]
    return "\n".join(lines) + "\n"


class AliasExpansionTests(unittest.TestCase):
    """Aliases that expand a small file into a huge document are refused before any walk."""

    def test_billion_laughs_is_refused(self):
        self.assertEqual(errors_of(BILLION_LAUGHS), [
            "cfg.yml:6: YAML aliases expand the document to more than 100000 values; refusing it"])

    def test_both_loaders_refuse_it(self):
        for loader in (yamlmarks.FastLoader, yamlmarks.PureLoader):
            with self.assertRaises(yamlmarks.TooLarge, msg=loader) as caught:
                yamlmarks._read(loader, BILLION_LAUGHS)
            self.assertEqual(caught.exception.line, 6)

    def test_alias_inside_its_own_anchor(self):
        self.assertEqual(errors_of("sources: &s\n- static: {plugs: *s}\n"), [
            "cfg.yml:1: YAML aliases expand the document without end (an alias inside its own "
            "anchor); refusing it"])

    def test_aliases_count_in_full(self):
        for loader in (yamlmarks.FastLoader, yamlmarks.PureLoader):
            node = yaml.compose("a: &a [1, 2]\nb: [*a, *a]\n", Loader=loader)
            # The mapping, 2 keys, [1, 2] (3 values), and [*a, *a] (1 + 3 + 3).
            self.assertEqual(yamlmarks._expanded_size(node), 13)

    def test_ordinary_configs_are_far_below_the_limit(self):
        text = many_plugs(200)
        size = yamlmarks._expanded_size(yaml.compose(text, Loader=yamlmarks.FastLoader))
        self.assertLess(size, yamlmarks.MAX_NODES / 10)
        c = config.load_text(text, "cfg.yml")
        self.assertEqual(len(c.plugs), 200)
        self.assertEqual((c.plugs["s3"].settings.skip_rate, c.plugs["s3"].settings.max_watts), (1, 4))

    def test_check_prints_a_short_error(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(BILLION_LAUGHS)
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr.splitlines(), [
            f"{path}:6: YAML aliases expand the document to more than 100000 values; refusing it",
            f"senselink check: {path} is not valid"])
        self.assertEqual(result.stdout, "")


class ClippedValueTests(unittest.TestCase):
    """No problem shows more than about 200 characters of a value."""

    def test_long_values_are_clipped(self):
        words = [f"word{i}" for i in range(2000)]
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a:\n        max_watts: "
                             f"[{', '.join(words)}]\n")
        self.assertEqual(len(problems), 1)
        full = repr(words)
        self.assertEqual(problems[0], "cfg.yml:5: sources[0].static.plugs[0].a.max_watts: "
                         f"expected a number from 0 to 1000000000 W, got a list {full[:200]}… "
                         f"({len(full)} characters)")

    def test_short_values_are_whole(self):
        problems = errors_of("sources:\n- static:\n    plugs:\n    - a: {max_watts: [1, 2]}\n")
        self.assertTrue(problems[0].endswith("expected a number from 0 to 1000000000 W, got a list [1, 2]"), problems)

    def test_long_keys_and_ids_are_clipped(self):
        key, plug = "k" * 1000, "p" * 1000      # (YAML keys are at most 1024 characters)
        problems = errors_of(f"sources:\n- static:\n    plugs:\n    - {plug}: {{{key}: 1}}\n"
                             f"- aggregate:\n    plugs:\n    - g: {{elements: [{plug}, {plug}x]}}\n")
        self.assertEqual(len(problems), 2, problems)
        for problem in problems:
            self.assertLess(len(problem), 800, problem[:300])
        # The ids are refused for their length (names: at most 128 characters).
        self.assertIn("plug id: expected text of at most 128 characters, got 1000", problems[0])
        self.assertIn("elements: expected text of at most 128 characters, got 1000", problems[1])
        problems = errors_of(f"sources:\n- static:\n    plugs:\n    - a: {{{key}: 1}}\n")
        self.assertRegex(problems[0], r"… \(1000 characters\)")
        self.assertLess(len(problems[0]), 800)

    def test_a_clipped_secret_is_still_hidden(self):
        secret = "".join(f"{i:04d}" for i in range(100))      # 400 characters
        problems = errors_of("sources:\n- hass:\n    url: ws://127.0.0.1:8123\n"
                             f"    auth_token: [{secret}]\n    plugs: []\n")
        self.assertEqual(problems[0], "cfg.yml:4: sources[0].hass.auth_token: expected text, "
                                      "got a list ***")  # (the secret list is not shown)
        problems = errors_of(f"web:\n  token: {{{secret}: [{secret}]}}\nsources: []\n")
        self.assertEqual(len(problems), 1)
        self.assertNotIn(secret[:20], problems[0])
        self.assertNotIn(secret[-20:], problems[0])


class CommandLineTests(unittest.TestCase):
    def run_module(self, *args, env=None):
        return subprocess.run([sys.executable, "-m", "senselink", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {})})

    def test_check_valid(self):
        result = self.run_module("check", "-c", "examples/demo.yml")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("Media Center", result.stdout)
        self.assertIn("in aggregate Media", result.stdout)
        self.assertIn("valid", result.stdout)

    def test_check_invalid(self):
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("sources:\n- static:\n    plugs:\n    - a: {max_watts: x}\n")
        result = self.run_module("check", "-c", path)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{path}:4: sources[0].static.plugs[0].a.max_watts: expected a number",
                      result.stderr)
        self.assertNotIn("Traceback", result.stderr)

    def test_check_uses_config_location(self):
        result = self.run_module("check", env={"CONFIG_LOCATION": "examples/demo.yml"})
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_generate(self):
        result = self.run_module("generate")
        self.assertEqual(result.returncode, 0)
        lines = dict(line.split(": ") for line in result.stdout.strip().splitlines())
        self.assertRegex(lines["mac"], r"^([0-9A-F]{2}:){5}[0-9A-F]{2}$")
        self.assertRegex(lines["device_id"], r"^[0-9A-F]{40}$")
        c = config.load_text("sources:\n- static:\n    plugs:\n    - a:\n"
                             f"        mac: {lines['mac']}\n        device_id: {lines['device_id']}\n")
        self.assertEqual(c.plugs["a"].settings.mac, lines["mac"])
