"""`python -m senselink check`: what it finds besides the config itself."""

import os
import stat
import subprocess
import sys

from twisted.trial import unittest

from tests.processes import ROOT, limit_memory

CONFIG = "sources:\n- static:\n    plugs:\n    - lamp: {max_watts: 5, mac: '53:75:31:00:0C:01'}\n"



def sparse_gigabyte(path):
    """A 1 GiB file that takes no disk space."""
    with open(path, "wb") as f:
        f.truncate(1 << 30)

class CheckCase(unittest.TestCase):
    """Runs C{python -m senselink check}."""

    def check(self, text, make=None):
        """Run C{check} on a config of C{text}, or on what C{make(path)} puts at its path.

        A hang fails at the timeout; reading without bound fails at the memory limit."""
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        path = os.path.join(directory, "c.yml")
        if make is None:
            with open(path, "w") as f:
                f.write(text.replace("DIR", directory))
        else:
            make(path)
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                capture_output=True, text=True, timeout=30, cwd=directory,
                                env={**os.environ, "PYTHONPATH": ROOT}, preexec_fn=limit_memory())
        return path, directory, result

    def assertOneProblem(self, result, line):
        """Exit code 1, C{line} and the verdict on stderr, nothing else."""
        self.assertEqual(result.returncode, 1, result.stderr)
        problems = [text for text in result.stderr.splitlines()
                    if not text.startswith("senselink check: ")]
        self.assertEqual(problems, [line], result.stderr)
        self.assertNotIn("Traceback", result.stderr)


class CheckTests(CheckCase):
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


class FilesThatAreNotConfigsTests(CheckCase):
    """A config path or a state_file that is not a regular file, or is far too large."""

    def setUp(self):
        if os.getuid() != 0:
            raise unittest.SkipTest("device nodes are made with mknod, which needs root")

    def test_a_config_that_is_a_fifo(self):
        path, _, result = self.check(None, os.mkfifo)
        self.assertOneProblem(result, f"{path}: cannot read config: it is a FIFO (named pipe), "
                                      f"not a regular file")

    def test_a_config_that_is_a_symlink_to_dev_zero_or_urandom(self):
        for device in ("/dev/zero", "/dev/urandom"):
            path, _, result = self.check(None, lambda path: os.symlink(device, path))
            self.assertOneProblem(result, f"{path}: cannot read config: it is a character "
                                          f"device, not a regular file")

    def test_a_config_far_too_large(self):
        path, _, result = self.check(None, sparse_gigabyte)
        self.assertOneProblem(result, f"{path}: cannot read config: it holds 1073741824 bytes, "
                                      f"more than the 4 MiB a config file may hold")

    def state_file(self, make):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        state = os.path.join(directory, "state")
        make(state)
        path, _, result = self.check(f"state_file: {state}\n" + CONFIG)
        return path, state, result

    def test_a_state_file_that_is_a_device(self):
        path, state, result = self.state_file(
            lambda p: os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(1, 3)))
        self.assertOneProblem(result, f"{path}: state_file: cannot read {state}: it is a "
                                      f"character device, not a regular file")
        self.assertTrue(stat.S_ISCHR(os.lstat(state).st_mode))

    def test_dev_null_as_state_file(self):
        path, _, result = self.check("state_file: /dev/null\n" + CONFIG)
        self.assertOneProblem(result, f"{path}: state_file: cannot read /dev/null: it is a "
                                      f"character device, not a regular file")

    def test_a_state_file_that_is_a_fifo(self):
        path, state, result = self.state_file(os.mkfifo)
        self.assertOneProblem(result, f"{path}: state_file: cannot read {state}: it is a FIFO "
                                      f"(named pipe), not a regular file")

    def test_a_state_file_of_a_gigabyte(self):
        path, state, result = self.state_file(sparse_gigabyte)
        self.assertOneProblem(result, f"{path}: state_file: cannot read {state}: it holds "
                                      f"1073741824 bytes, more than the 16 MiB a state file may "
                                      f"hold")

    def test_a_ca_file_or_token_file_that_is_a_fifo(self):
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        fifo = os.path.join(directory, "fifo")
        os.mkfifo(fifo)
        path, _, result = self.check(
            f"state_file: false\nsources:\n- http:\n    url: https://127.0.0.1/\n"
            f"    ca_file: {fifo}\n    plugs:\n    - a: {{mac: '53:75:31:00:0C:02'}}\n")
        self.assertOneProblem(result, f"{path}:5: sources[0].http.ca_file: cannot read ca_file "
                                      f"{fifo!r}: it is a FIFO (named pipe), not a regular file")
        path, _, result = self.check(
            f"state_file: false\nsources:\n- hass:\n    url: ws://127.0.0.1:1/\n"
            f"    auth_token_file: {fifo}\n    plugs:\n"
            f"    - a: {{entity_id: light.a, mac: '53:75:31:00:0C:03'}}\n")
        self.assertOneProblem(result, f"{path}:3: sources[0].hass.auth_token_file: cannot read "
                                      f"the access token from {fifo!r}: it is a FIFO (named "
                                      f"pipe), not a regular file")
    def test_long_names_are_one_short_line(self):
        """A 10,000-character alias is refused (names are at most 128 characters) in one
        line that stays short; the table clips what it shows (shown_name)."""
        alias = "A" * 10_000
        _, _, result = self.check(
            "state_file: false\nsources:\n- static:\n    plugs:\n"
            f"    - lamp: {{alias: '{alias}', max_watts: 5, mac: '53:75:31:00:0C:01'}}\n")
        self.assertEqual(result.returncode, 1)
        lines = (result.stdout + result.stderr).splitlines()
        self.assertLessEqual(max(len(line) for line in lines), 600, lines)
        self.assertIn("lamp.alias: expected text of at most 128 characters, got 10000",
                      result.stderr)
