"""`python -m senselink check`: what it finds besides the config itself."""

import os
import re
import subprocess
import sys

from twisted.trial import unittest

from tests.processes import ROOT

CONFIG = "sources:\n- static:\n    plugs:\n    - lamp: {max_watts: 5, mac: '53:75:31:00:0C:01'}\n"


class CheckTests(unittest.TestCase):
    def check(self, text):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "c.yml")
        with open(path, "w") as f:
            f.write(text.replace("DIR", directory))
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                capture_output=True, text=True, timeout=60, cwd=directory,
                                env={**os.environ, "PYTHONPATH": ROOT})
        return path, directory, result

    def test_an_unwritable_state_file_location_fails_the_check(self):
        path, directory, result = self.check("state_file: DIR/missing/s.json\n" + CONFIG)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{path}: state_file: cannot write {directory}/missing/s.json: the "
                      f"directory {directory}/missing does not exist", result.stderr)

    def test_an_unreadable_state_file_fails_the_check(self):
        path, directory, _ = self.check(CONFIG)
        os.makedirs(os.path.join(directory, "senselink-state.json"))
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                capture_output=True, text=True, timeout=60, cwd=directory,
                                env={**os.environ, "PYTHONPATH": ROOT})
        self.assertEqual(result.returncode, 1)
        self.assertIn("is a directory", result.stderr)

    def test_memory_only_counters_and_one_plug(self):
        _, _, result = self.check("state_file: false\n" + CONFIG)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("valid; 1 plug, 1 reported to Sense", result.stdout)

    def test_long_names_are_clipped_in_the_table(self):
        """A 10,000-character alias: the table shows 200 of them and the size."""
        alias = "A" * 10_000
        _, _, result = self.check(
            "state_file: false\nsources:\n- static:\n    plugs:\n"
            f"    - lamp: {{alias: '{alias}', max_watts: 5, mac: '53:75:31:00:0C:01'}}\n"
            "- aggregate:\n    plugs:\n"
            f"    - room: {{alias: '{alias}', mac: '53:75:31:00:0C:02', elements: [lamp]}}\n")
        lines = (result.stdout + result.stderr).splitlines()
        self.assertLessEqual(max(len(line) for line in lines), 600, lines)
        if result.returncode == 0:     # (a config that bounds aliases refuses it, briefly)
            clipped = re.escape("A" * 200 + "… (10000 characters)")
            self.assertRegex(result.stdout, rf"\nlamp +{clipped} +53:75:31:00:0C:01 +static +"
                                            rf"in aggregate room\n")
            self.assertRegex(result.stdout, rf"\nroom +{clipped} +53:75:31:00:0C:02 +aggregate +"
                                            rf"yes\n")
