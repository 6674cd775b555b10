"""contrib/release.py: a release in one step, on a copy of the repository.

The script's rules are tested as functions (loaded from its file); the script
itself runs on a Git clone of this repository holding the work tree as it is,
and the clone's own version tests (tests/test_version.py and the app wheel's
InStepTests) must pass there afterwards. Nothing here writes to the checkout.
"""

import importlib.util
import os
import re
import subprocess
import sys

from twisted.trial import unittest

import senselink
from tests.checkout import ROOT, changed_files, clone_checkout, git, run

RELEASE_TIMEOUT = 600       # seconds: the wheel's build fetches setuptools from the index
TRIAL_TIMEOUT = 300


def load_release():
    spec = importlib.util.spec_from_file_location(
        "release_script", os.path.join(ROOT, "contrib", "release.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release = load_release()

CHANGELOG = """# Changelog

Intro.

## [Unreleased]

### Added

- Something new.

## [0.9.0] - 2026-01-02

- Older.
"""


def files(version="0.9.0", changelog=CHANGELOG):
    return {
        release.INIT: f'"""Doc."""\n\n__version__ = "{version}"\n',
        release.CHANGELOG: changelog,
        release.APP_CHANGELOG: "stale copy\n",
        release.APP_CONFIG: f'name: SenseLink\nversion: "{version}"\nslug: senselink\n',
        release.APP_DOCKERFILE: f"FROM python\nARG BUILD_VERSION={version}\nCOPY x /src/\n",
    }


class RulesTests(unittest.TestCase):

    def test_only_x_y_z(self):
        for text in ("0.2", "1.2.3.4", "01.2.3", "1.02.3", "v1.2.3", "1.2.3-rc1", " 1.2.3", ""):
            self.assertRaises(release.Refused, release.version_key, text)
        self.assertEqual(release.version_key("10.0.20"), (10, 0, 20))

    def test_higher_is_semantic_not_textual(self):
        self.assertGreater(release.version_key("0.10.0"), release.version_key("0.9.0"))
        self.assertEqual(release.plan(files(), "0.10.0", "2026-02-01")[release.INIT],
                         '"""Doc."""\n\n__version__ = "0.10.0"\n')

    def test_not_higher_is_refused(self):
        for version in ("0.9.0", "0.8.9", "0.1.0"):
            with self.assertRaisesRegex(release.Refused, "not higher than 0.9.0"):
                release.plan(files(), version, "2026-02-01")

    def test_the_changelogs_last_release_counts_too(self):
        with self.assertRaisesRegex(release.Refused, "not higher than 0.9.0"):
            release.plan(files(version="0.5.0"), "0.9.0", "2026-02-01")

    def test_the_unreleased_notes_become_a_dated_entry(self):
        out = release.plan(files(), "1.0.0", "2026-02-01")
        self.assertEqual(out[release.CHANGELOG], """# Changelog

Intro.

## [Unreleased]

## [1.0.0] - 2026-02-01

### Added

- Something new.

## [0.9.0] - 2026-01-02

- Older.
""")
        self.assertEqual(out[release.APP_CHANGELOG], out[release.CHANGELOG])
        self.assertIn('\nversion: "1.0.0"\n', out[release.APP_CONFIG])
        self.assertIn("\nARG BUILD_VERSION=1.0.0\n", out[release.APP_DOCKERFILE])

    def test_a_first_release(self):
        changelog = "# Changelog\n\n## [Unreleased]\n\n- First.\n"
        out = release.plan(files(changelog=changelog), "0.9.1", "2026-02-01")
        self.assertEqual(out[release.CHANGELOG],
                         "# Changelog\n\n## [Unreleased]\n\n## [0.9.1] - 2026-02-01\n\n- First.\n")

    def test_nothing_unreleased_is_refused(self):
        empty = CHANGELOG.replace("### Added\n\n- Something new.\n\n", "")
        with self.assertRaisesRegex(release.Refused, "nothing under"):
            release.plan(files(changelog=empty), "1.0.0", "2026-02-01")
        with self.assertRaisesRegex(release.Refused, "no '## \\[Unreleased\\]'"):
            release.plan(files(changelog="# Changelog\n"), "1.0.0", "2026-02-01")

    def test_dates(self):
        for date in ("2026-13-01", "yesterday", "2026-02-01T00:00"):
            self.assertRaises(release.Refused, release.plan, files(), "1.0.0", date)
        with self.assertRaisesRegex(release.Refused, "before the last release"):
            release.plan(files(), "1.0.0", "2026-01-01")
        release.plan(files(), "1.0.0", "2026-01-02")

    def test_a_file_without_its_version_line_is_refused(self):
        broken = files()
        broken[release.APP_DOCKERFILE] = "FROM python\n"
        with self.assertRaisesRegex(release.Refused, "ARG BUILD_VERSION=X.Y.Z"):
            release.plan(broken, "1.0.0", "2026-02-01")


def next_minor(version):
    major, minor, _ = (int(part) for part in version.split("."))
    return f"{major}.{minor + 1}.0"


class OnACopyTests(unittest.TestCase):
    """The script and the version tests, run as a user runs them, in a clone."""
    timeout = RELEASE_TIMEOUT + TRIAL_TIMEOUT + 60

    def setUp(self):
        self.copy = os.path.abspath(self.mktemp())
        clone_checkout(self.copy)
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env["PYTHONPATH"] = self.copy

    def run_release(self, *args):
        return subprocess.run([sys.executable, os.path.join("contrib", "release.py"), *args],
                              cwd=self.copy, env=self.env, capture_output=True, text=True,
                              timeout=RELEASE_TIMEOUT)

    def version_tests(self, *names):
        return subprocess.run([sys.executable, "-m", "twisted.trial", "--temp-directory",
                               os.path.join(self.copy, "_trial_temp"), *names],
                              cwd=self.copy, env=self.env, capture_output=True, text=True,
                              timeout=TRIAL_TIMEOUT)

    def edit(self, name, old, new):
        path = os.path.join(self.copy, name)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        self.assertIn(old, text)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))

    def test_refusals_change_nothing(self):
        current = senselink.__version__
        for version, reason in ((current, "not higher than"), ("0.0.1", "not higher than"),
                                ("1.0", "not a version X.Y.Z")):
            result = self.run_release(version, "--date", "2099-01-01")
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertIn(reason, result.stderr)
            self.assertEqual(changed_files(self.copy), {})

    def test_a_release_is_consistent(self):
        for name in ("CHANGELOG.md", os.path.join("senselink_app", "CHANGELOG.md")):
            self.edit(name, "## [Unreleased]\n", "## [Unreleased]\n\n- A change for users.\n")
        git(self.copy, "commit", "--quiet", "-am", "A change")
        old, new = senselink.__version__, next_minor(senselink.__version__)
        result = self.run_release(new, "--date", "2099-01-01")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        wheel = "senselink_app/senselink_twisted-{}-py3-none-any.whl"
        self.assertEqual(changed_files(self.copy), {
            "senselink/__init__.py": " M", "CHANGELOG.md": " M",
            "senselink_app/CHANGELOG.md": " M", "senselink_app/config.yaml": " M",
            "senselink_app/Dockerfile": " M", wheel.format(old): " D", wheel.format(new): "??"})
        with open(os.path.join(self.copy, "CHANGELOG.md"), encoding="utf-8") as f:
            changelog = f.read()
        self.assertIn(f"## [Unreleased]\n\n## [{new}] - 2099-01-01\n\n- A change for users.\n",
                      changelog)
        checked = self.version_tests("tests.test_version", "tests.test_appwheel.InStepTests")
        self.assertEqual(checked.returncode, 0, checked.stdout[-6000:] + checked.stderr)
        self.assertRegex(checked.stdout, r"PASSED \(successes=\d+\)")
        # A second release of the same version is refused.
        again = self.run_release(new, "--date", "2099-01-01")
        self.assertIn(f"not higher than {new}", again.stderr)

    def test_the_version_tests_fail_when_the_app_disagrees(self):
        current = senselink.__version__
        self.edit(os.path.join("senselink_app", "config.yaml"), f'version: "{current}"',
                  f'version: "{next_minor(current)}"')
        checked = self.version_tests("tests.test_version")
        self.assertNotEqual(checked.returncode, 0)
        failed = re.findall(r"^\s+(\w+) \.\.\. +\[FAIL\]", checked.stdout, re.M)
        self.assertEqual(failed, ["test_the_apps_config_says_it"], checked.stdout[-6000:])
