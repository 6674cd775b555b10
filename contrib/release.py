#!/usr/bin/env python3
"""Cut a release in one step:

    python3 contrib/release.py X.Y.Z [--date YYYY-MM-DD]

The version is declared once, as `__version__` in senselink/__init__.py;
setup.py reads it there. This script writes the new version there and in the
places that must repeat it for the Home Assistant Supervisor (the app's
config.yaml `version:` and its Dockerfile's `ARG BUILD_VERSION=`), moves what
CHANGELOG.md lists under "Unreleased" into an entry for X.Y.Z dated today (or
--date), copies the changelog to senselink_app/CHANGELOG.md (the Supervisor
shows it before an update), and rebuilds the app's wheel with
contrib/app_wheel.py, which removes the old one. tests/test_version.py checks
the result.

It refuses, changing nothing, a version that is not X.Y.Z (numbers without
leading zeros) or not higher than the last release (compared as semantic
versions), an empty "Unreleased" section, and a date before the last
release's. When the wheel cannot be built, the files it wrote are put back.
Committing and tagging are left to you: the script prints the commands.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INIT = os.path.join("senselink", "__init__.py")
CHANGELOG = "CHANGELOG.md"
APP_CHANGELOG = os.path.join("senselink_app", "CHANGELOG.md")
APP_CONFIG = os.path.join("senselink_app", "config.yaml")
APP_DOCKERFILE = os.path.join("senselink_app", "Dockerfile")

SEMVER = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
UNRELEASED = "## [Unreleased]"
RELEASE = re.compile(r"^## \[(?P<version>[^\]]+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)
# The one line in each file that holds the version, and how to write it.
VERSION_LINES = {
    INIT: (re.compile(r'^__version__ = "[^"]*"$', re.M), '__version__ = "{}"'),
    APP_CONFIG: (re.compile(r'^version: "[^"]*"$', re.M), 'version: "{}"'),
    APP_DOCKERFILE: (re.compile(r"^ARG BUILD_VERSION=\S*$", re.M), "ARG BUILD_VERSION={}"),
}


class Refused(Exception):
    """The release cannot be made as asked; nothing was changed."""


def version_key(text):
    """(major, minor, patch) of a X.Y.Z version; L{Refused} for anything else."""
    match = SEMVER.fullmatch(text)
    if match is None:
        raise Refused(f"{text!r} is not a version X.Y.Z (three numbers without leading zeros)")
    return tuple(int(part) for part in match.groups())


def with_version(text, name, version):
    """C{text} of the file C{name} with its version line saying C{version}."""
    pattern, line = VERSION_LINES[name]
    found = pattern.findall(text)
    if len(found) != 1:
        raise Refused(f"{name}: expected one line like {line.format('X.Y.Z')!r}, "
                      f"found {len(found)}")
    return pattern.sub(line.format(version), text)


def current_version(init_text):
    match = re.search(r'^__version__ = "([^"]*)"$', init_text, re.M)
    if match is None:
        raise Refused(f"{INIT} declares no __version__")
    return match.group(1)


def released(changelog):
    """The (version, date) of the changelog's newest release, or None without one."""
    match = RELEASE.search(changelog)
    return (match["version"], match["date"]) if match else None


def with_release(changelog, version, date):
    """C{changelog} with its Unreleased section's text moved into a dated X.Y.Z entry."""
    head, found, rest = changelog.partition(UNRELEASED + "\n")
    if not found:
        raise Refused(f"{CHANGELOG} has no '{UNRELEASED}' section")
    following = re.search(r"^## ", rest, re.M)
    notes, after = (rest[:following.start()], rest[following.start():]) if following \
        else (rest, "")
    if not notes.strip():
        raise Refused(f"nothing under '{UNRELEASED}' in {CHANGELOG}: "
                      f"write what changed for users first")
    entry = f"## [{version}] - {date}\n\n{notes.strip()}\n"
    return f"{head}{UNRELEASED}\n\n{entry}" + (f"\n{after}" if after else "")


def plan(files, version, date):
    """{file name: new text} for releasing C{version} on C{date} (an ISO date string)."""
    new = version_key(version)
    try:
        datetime.date.fromisoformat(date)
    except ValueError:
        raise Refused(f"{date!r} is not a date YYYY-MM-DD") from None
    current = current_version(files[INIT])
    last = released(files[CHANGELOG])
    for label, old in ((INIT, current), (CHANGELOG, last[0] if last else None)):
        if old is not None and new <= version_key(old):
            raise Refused(f"{version} is not higher than {old} ({label}): "
                          f"a release needs a higher version")
    if last and date < last[1]:
        raise Refused(f"{date} is before the last release's date ({last[0]}, {last[1]})")
    changelog = with_release(files[CHANGELOG], version, date)
    out = {name: with_version(files[name], name, version) for name in VERSION_LINES}
    out[CHANGELOG] = out[APP_CHANGELOG] = changelog
    return out


def read(root, name):
    with open(os.path.join(root, name), encoding="utf-8") as f:
        return f.read()


def write(root, name, text):
    with open(os.path.join(root, name), "w", encoding="utf-8") as f:
        f.write(text)


def release(root, version, date):
    names = (INIT, CHANGELOG, APP_CHANGELOG, APP_CONFIG, APP_DOCKERFILE)
    before = {name: read(root, name) for name in names}
    after = plan(before, version, date)
    for name in names:
        write(root, name, after[name])
    built = subprocess.run([sys.executable, os.path.join(root, "contrib", "app_wheel.py")])
    if built.returncode != 0:
        for name in names:
            write(root, name, before[name])
        raise Refused("the app's wheel could not be built; the files are as they were")
    for name in names:
        print(f"wrote {name}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Cut a release: version, changelog, app wheel.")
    parser.add_argument("version", help="the new version, X.Y.Z, higher than the last")
    parser.add_argument("--date", default=datetime.date.today().isoformat(),
                        help="the release's date, YYYY-MM-DD (default: today)")
    args = parser.parse_args(argv)
    try:
        release(ROOT, args.version, args.date)
    except Refused as refused:
        sys.exit(f"release.py: {refused}")
    print(f"Released {args.version}. Check and commit it:\n"
          f"  python3 -m twisted.trial tests.test_version tests.test_appwheel\n"
          f"  git add -A senselink/__init__.py CHANGELOG.md senselink_app\n"
          f"  git commit -m 'Release {args.version}' && git tag v{args.version}")


if __name__ == "__main__":
    main()
