"""Test helpers: copies of this checkout to build or release in, so the checkout is never touched.

A copy holds the files as they are in the work tree now (tracked, or new and
not ignored), not only the committed ones, so a test sees the change under work.
"""

import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIT_USER = ["-c", "user.name=SenseLink tests", "-c", "user.email=tests@localhost"]


def run(argv, timeout, **kwargs):
    """stdout of C{argv}, which must succeed within C{timeout} seconds."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{argv} exited with {result.returncode}:\n"
                             f"{result.stdout[-4000:]}{result.stderr[-4000:]}")
    return result.stdout


def copy_checkout(target):
    """Copy the checkout's files to C{target}."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                 60, cwd=ROOT)
    for name in sorted(set(filter(None, listed.split("\0")))):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):          # a tracked file deleted in the work tree is left out
            os.makedirs(os.path.join(target, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(source, os.path.join(target, name))


def clone_checkout(target):
    """A Git clone of the repository at C{target} whose one new commit is the work tree now."""
    run(["git", "clone", "--quiet", "--no-checkout", ROOT, target], 120)
    copy_checkout(target)
    git(target, "add", "-A")
    git(target, "commit", "--quiet", "--allow-empty", "-m", "The work tree under test")


def git(repository, *args):
    return run(["git", *GIT_USER, *args], 60, cwd=repository)


def changed_files(repository):
    """{path: two-letter status} of what differs from the last commit."""
    return {line[3:]: line[:2] for line in
            git(repository, "status", "--porcelain", "--untracked-files=all").splitlines()}
