"""The README's test command (bash .ci/run) installs its Debian packages as root without
sudo, and through sudo for a user: .ci/install-packages with stand-ins for id, sudo
and apt-get on a PATH of its own."""

import os
import subprocess

from twisted.trial import unittest

from tests.processes import ROOT

STAND_IN = """#!/bin/sh
echo "{name} $*" >> "$CALLS"
{body}
"""


class InstallPackagesTests(unittest.TestCase):
    def run_as(self, uid, with_sudo):
        bin_dir = os.path.abspath(self.mktemp())
        os.makedirs(bin_dir)
        calls = os.path.join(bin_dir, "calls")
        tools = {"id": f"echo {uid}", "apt-get": "exit 0"}
        if with_sudo:
            tools["sudo"] = 'exec "$@"'
        for name, body in tools.items():
            path = os.path.join(bin_dir, name)
            with open(path, "w") as f:
                f.write(STAND_IN.format(name=name, body=body))
            os.chmod(path, 0o755)
        # Only the stand-ins and a shell: every package looks missing.
        for tool in ("bash", "sh", "dirname", "cat"):
            for directory in ("/usr/bin", "/bin"):
                if os.path.exists(os.path.join(directory, tool)):
                    os.symlink(os.path.join(directory, tool), os.path.join(bin_dir, tool))
                    break
        result = subprocess.run([os.path.join(bin_dir, "bash"), ".ci/install-packages"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60,
                                env={"PATH": bin_dir, "CALLS": calls})
        with open(calls) as f:
            return result, [line.split()[:2] for line in f if not line.startswith("id ")]

    def test_root_without_sudo(self):
        result, calls = self.run_as(0, with_sudo=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(calls, [["apt-get", "update"], ["apt-get", "install"]])

    def test_a_user_with_sudo(self):
        result, calls = self.run_as(1000, with_sudo=True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(calls, [["sudo", "apt-get"], ["apt-get", "update"],
                                 ["sudo", "apt-get"], ["apt-get", "install"]])

    def test_a_user_without_sudo_is_told(self):
        bin_result, _ = self.run_as(1000, with_sudo=False)
        self.assertNotEqual(bin_result.returncode, 0)
        self.assertIn("run as root, or install sudo", bin_result.stderr)

    def test_the_readme_test_command_needs_no_sudo(self):
        with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
        commands = [block.split("```", 1)[0].strip() for block in quick.split("```sh\n")[1:]]
        self.assertEqual(commands, ["pip install . && twistd -n senselink -c examples/demo.yml",
                                    "bash .ci/run"])
