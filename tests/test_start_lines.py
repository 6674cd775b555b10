"""What `python -m senselink` says as it starts: names clipped, the state file's place told truly.

Each test runs the daemon as a user does, in a child process with its own
working directory, and reads what it wrote.
"""

import os
import sys

from twisted.internet import defer
from twisted.trial import unittest

from senselink.energy.service import STATE_DIRECTORY_VARIABLES
from tests.deploy_support import child_env, spawn

LIMIT = 600      # characters in one whole line: a 200-character excerpt, its size, our words

CONFIG = """\
{state}
sources:
- static:
    plugs:
    - lamp: {{alias: "{alias}", max_watts: 5, mac: "53:75:31:00:0D:01"}}
    - tv: {{alias: TV, max_watts: 50, mac: "53:75:31:00:0D:02"}}
- aggregate:
    plugs:
    - room: {{alias: "{alias}", mac: "53:75:31:00:0D:03", elements: [lamp, tv]}}
"""


class StartLineTests(unittest.TestCase):

    def setUp(self):
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.config = os.path.join(self.dir, "c.yml")

    @defer.inlineCallbacks
    def start(self, alias="Lamp", state="state_file: false"):
        """The daemon's output once it has listed its plugs (or once it ended, refusing)."""
        with open(self.config, "w") as f:
            f.write(CONFIG.format(alias=alias, state=state))
        env = {k: v for k, v in child_env().items() if k not in STATE_DIRECTORY_VARIABLES}
        proc = spawn([sys.executable, "-m", "senselink", "-c", self.config, "-p", "0",
                      "--interface", "127.0.0.1"], env, path=self.dir)
        self.addCleanup(proc.stop)
        try:
            yield proc.wait_for(r"Plug tv \(.*\n")
        except AssertionError:        # ended without starting: its words are the output
            return proc.output, False
        yield proc.stop()
        return proc.output, True

    @defer.inlineCallbacks
    def test_a_long_alias_is_refused_in_a_short_line(self):
        """Names are at most 128 characters: a 10,000-character alias stops the start with
        one short line (the start lines clip names too, should one ever be longer)."""
        output, started = yield self.start("A" * 10_000)
        self.assertFalse(started, output)
        longest = max(output.splitlines(), key=len)
        self.assertLessEqual(len(longest), LIMIT, longest[:LIMIT])
        self.assertIn("lamp.alias: expected text of at most 128 characters, got 10000", output)

    @defer.inlineCallbacks
    def test_the_longest_alias_is_written_whole(self):
        alias = "A" * 128
        output, started = yield self.start(alias)
        self.assertTrue(started, output)
        self.assertIn(f"Plug lamp ({alias}, 53:75:31:00:0D:01, static): 5.0 W, in aggregate "
                      f"room", output)

    @defer.inlineCallbacks
    def test_an_absolute_state_file_below_the_working_directory_is_as_configured(self):
        path = os.path.join(self.dir, "state", "counters.json")
        os.makedirs(os.path.dirname(path))
        output, started = yield self.start(state=f"state_file: {path}")
        self.assertTrue(started, output)
        self.assertIn(f"Energy counters are kept in {path}, saved every 60 s "
                      f"(as configured by state_file)", output)
        self.assertNotIn("working directory", output)

    @defer.inlineCallbacks
    def test_a_relative_state_file_is_in_the_working_directory(self):
        output, started = yield self.start(state="state_file: counters.json")
        self.assertTrue(started, output)
        path = os.path.join(self.dir, "counters.json")
        self.assertIn(f"Energy counters are kept in {path}, saved every 60 s (in the working "
                      f"directory; set state_file to an absolute path", output)
