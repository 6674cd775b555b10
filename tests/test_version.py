"""One version, declared once, and everything that names it in step.

`senselink.__version__` is the version. setup.py reads it; the Home Assistant
app's config.yaml, its wheel's file name and its Dockerfile's BUILD_VERSION
must say the same, or the Supervisor never offers an update (it compares
config.yaml's version with the installed one). CHANGELOG.md (Keep a Changelog)
has an entry for every release, newest first, the top one being this version;
the app's CHANGELOG.md, which the Supervisor shows before an update, is the
same text. contrib/release.py keeps all of this in step.
"""

import datetime
import os
import re
import subprocess
import sys
import zipfile

import yaml
from twisted.trial import unittest

import senselink

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "senselink_app")
VERSION = senselink.__version__
SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
RELEASE = re.compile(r"## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})")
FIX = "run `python3 contrib/release.py X.Y.Z` to release, which keeps them in step"


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def key(version):
    return tuple(int(part) for part in SEMVER.fullmatch(version).groups())


def changelog_sections(text):
    """[(heading, body)] of the level-2 sections of a changelog."""
    parts = re.split(r"^(## .*)$", text, flags=re.M)
    return [(parts[i].strip(), parts[i + 1].strip()) for i in range(1, len(parts), 2)]


class OneVersionTests(unittest.TestCase):

    def test_the_version_is_semantic(self):
        self.assertTrue(SEMVER.fullmatch(VERSION), VERSION)

    def test_setup_py_reads_it(self):
        result = subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip().splitlines()[-1], VERSION)

    def test_the_apps_config_says_it(self):
        self.assertEqual(yaml.safe_load(read("senselink_app", "config.yaml"))["version"],
                         VERSION, FIX)

    def test_the_apps_wheel_is_of_it(self):
        wheels = sorted(name for name in os.listdir(APP) if name.endswith(".whl"))
        self.assertEqual(wheels, [f"senselink_twisted-{VERSION}-py3-none-any.whl"], FIX)
        with zipfile.ZipFile(os.path.join(APP, wheels[0])) as wheel:
            metadata = wheel.read(f"senselink_twisted-{VERSION}.dist-info/METADATA").decode()
        self.assertIn(f"\nVersion: {VERSION}\n", metadata, FIX)

    def test_the_dockerfiles_name_no_other(self):
        """A line about a version in a Dockerfile (ARG BUILD_VERSION=...) names this one."""
        named = []
        for parts in (("Dockerfile",), ("senselink_app", "Dockerfile"),
                      ("senselink_app", "build.yaml")):
            if not os.path.exists(os.path.join(ROOT, *parts)):
                continue
            for line in read(*parts).splitlines():
                if "version" in line.lower() and not line.lstrip().startswith("#"):
                    named += [(os.path.join(*parts), found) for found in
                              re.findall(r"\b\d+\.\d+\.\d+\b", line)]
        self.assertIn((os.path.join("senselink_app", "Dockerfile"), VERSION), named)
        self.assertEqual([pair for pair in named if pair[1] != VERSION], [], FIX)


class ChangelogTests(unittest.TestCase):

    def test_the_app_shows_the_same_text(self):
        self.assertEqual(read("senselink_app", "CHANGELOG.md"), read("CHANGELOG.md"),
                         "senselink_app/CHANGELOG.md must be a copy of CHANGELOG.md")

    def test_keep_a_changelog_form(self):
        text = read("CHANGELOG.md")
        self.assertTrue(text.startswith("# Changelog\n"))
        sections = changelog_sections(text)
        self.assertEqual(sections[0][0], "## [Unreleased]")
        releases = []
        for heading, body in sections[1:]:
            match = RELEASE.fullmatch(heading)
            self.assertTrue(match, f"not '## [X.Y.Z] - YYYY-MM-DD': {heading}")
            self.assertTrue(SEMVER.fullmatch(match["version"]), heading)
            datetime.date.fromisoformat(match["date"])
            self.assertTrue(body, f"{heading} says nothing")
            releases.append((key(match["version"]), match["date"]))
        self.assertTrue(releases)
        versions, dates = [v for v, _ in releases], [d for _, d in releases]
        self.assertEqual(versions, sorted(set(versions), reverse=True), "newest first, once each")
        self.assertEqual(dates, sorted(dates, reverse=True), "newest first")

    def test_the_top_release_is_the_version(self):
        releases = [RELEASE.fullmatch(heading) for heading, _ in
                    changelog_sections(read("CHANGELOG.md"))[1:]]
        self.assertEqual(releases[0]["version"], VERSION, FIX)
