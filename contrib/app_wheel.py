#!/usr/bin/env python3
"""Build the wheel the Home Assistant app installs: senselink_app/senselink_twisted-<version>-py3-none-any.whl

The Supervisor builds the app from its own folder, which cannot reach the
package beside it; so the package goes into that folder as a wheel, rebuilt
with this script whenever the package changes (tests/test_appwheel.py fails,
naming this script, while the wheel and the source differ):

    python3 contrib/app_wheel.py

The wheel is pip's (`pip wheel`, setuptools from the index), made
reproducible: entries in name order, one fixed time stamp, stored without
compression so that Git keeps only the differences between versions, and
without the long description (the README) in its METADATA, which the app
never shows. RECORD is written anew for the changed METADATA.
"""

import base64
import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "senselink_app")
STAMP = (1980, 1, 1, 0, 0, 0)           # the earliest time a zip entry can carry


def version():
    with open(os.path.join(ROOT, "senselink", "__init__.py"), encoding="utf-8") as f:
        return next(line.split('"')[1] for line in f if line.startswith("__version__"))


def wheel_name(of_version):
    return f"senselink_twisted-{of_version}-py3-none-any.whl"


def headers_only(metadata: bytes) -> bytes:
    """METADATA without its body (the long description)."""
    head, _, _ = metadata.partition(b"\n\n")
    lines = [line for line in head.split(b"\n")
             if not line.startswith((b"Description-Content-Type:", b"Dynamic: description"))]
    return b"\n".join(lines) + b"\n"


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def reproducible(source, target):
    """Copy the wheel C{source} to C{target}: sorted, time-stamped alike, stored, METADATA
    without its body, RECORD anew."""
    with zipfile.ZipFile(source) as built:
        entries = {name: built.read(name) for name in built.namelist()}
    [record] = [name for name in entries if name.endswith(".dist-info/RECORD")]
    del entries[record]
    for name in entries:
        if name.endswith(".dist-info/METADATA"):
            entries[name] = headers_only(entries[name])
    lines = [record_line(name, data) for name, data in sorted(entries.items())]
    entries[record] = ("\n".join(lines + [f"{record},,"]) + "\n").encode()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as out:
        for name in sorted(entries, key=lambda n: (n == record, n)):
            info = zipfile.ZipInfo(name, STAMP)
            info.external_attr = 0o644 << 16
            out.writestr(info, entries[name])


# Not part of the package: left out of the copy the wheel is built from.
LEFT_OUT = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                  "_trial_temp*", "benchmarks", "tests", "senselink_app",
                                  "docs", "examples", "contrib")


def main():
    wanted = wheel_name(version())
    with tempfile.TemporaryDirectory() as work:
        # Built from a fresh copy of the tree: a build/ directory left by an
        # earlier build would bring modules back that were renamed or removed.
        tree = os.path.join(work, "tree")
        built = os.path.join(work, "wheel")
        shutil.copytree(ROOT, tree, ignore=LEFT_OUT)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                        "--wheel-dir", built, tree], check=True)
        [source] = glob.glob(os.path.join(built, "senselink_twisted-*.whl"))
        if os.path.basename(source) != wanted:
            sys.exit(f"pip built {os.path.basename(source)}, expected {wanted}")
        for old in glob.glob(os.path.join(APP, "senselink_twisted-*.whl")):
            os.remove(old)
        reproducible(source, os.path.join(APP, wanted))
    print(f"wrote {os.path.relpath(os.path.join(APP, wanted), ROOT)}")


if __name__ == "__main__":
    main()
