"""`python -m senselink check`: what it finds besides the config itself."""

import os
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
