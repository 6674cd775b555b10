"""The release artefacts as a user gets them: `python -m build`, then pip.

pyproject.toml declares the build backend (setuptools, PEP 517/518), so
`python -m build` makes an sdist and, from that sdist, a wheel. The build runs
on a copy of the checkout's files (those Git tracks or would track), never in
the checkout itself; the wheel goes into a fresh virtualenv with its
dependencies from the package index, as `pip install` does for a user, and
twistd from that virtualenv runs the demo config on 127.0.0.1 and answers a
Sense request.
"""

import os
import sys
import tarfile
import zipfile

from twisted.internet import defer
from twisted.trial import unittest

import senselink
from tests.checkout import copy_checkout, run
from tests.deploy_support import ask_udp, by_alias, spawn, stopped_cleanly
from tests.support import free_port

NAME = f"senselink_twisted-{senselink.__version__}"
BUILD_TIMEOUT = 600         # seconds: the build fetches setuptools from the index
INSTALL_TIMEOUT = 900       # seconds: pip fetches Twisted, autobahn, ... from the index
DEMO_ALIASES = {"NAS Server", "Ceiling Fan", "Space Heater", "Media Center"}
STATIC = ("senselink/web/static/status.js", "senselink/web/static/status.css",
          "senselink/web/static/icon.svg")


class BuildTests(unittest.TestCase):
    timeout = BUILD_TIMEOUT + INSTALL_TIMEOUT + 120      # trial's bound for a test, in seconds

    def setUp(self):
        base = os.path.abspath(self.mktemp())
        self.source, self.dist = os.path.join(base, "source"), os.path.join(base, "dist")
        self.venv, self.state = os.path.join(base, "venv"), os.path.join(base, "state")
        os.makedirs(self.state)
        copy_checkout(self.source)
        run([sys.executable, "-m", "build", "--outdir", self.dist, self.source], BUILD_TIMEOUT)

    def test_an_sdist_and_a_wheel_of_the_version(self):
        self.assertEqual(sorted(os.listdir(self.dist)),
                         [f"{NAME}-py3-none-any.whl", f"{NAME}.tar.gz"])
        with tarfile.open(os.path.join(self.dist, f"{NAME}.tar.gz")) as sdist:
            carried = {name.partition("/")[2] for name in sdist.getnames()}
        for name in ("README.md", "CHANGELOG.md", "pyproject.toml", "setup.py",
                     "twisted/plugins/senselink_plugin.py") + STATIC:
            self.assertIn(name, carried)
        self.assertFalse([name for name in carried if name.startswith("tests/")])
        with zipfile.ZipFile(os.path.join(self.dist, f"{NAME}-py3-none-any.whl")) as wheel:
            entries = set(wheel.namelist())
        for name in ("senselink/__init__.py", "twisted/plugins/senselink_plugin.py") + STATIC:
            self.assertIn(name, entries)
        self.assertNotIn("twisted/plugins/__init__.py", entries)

    @defer.inlineCallbacks
    def test_the_wheel_installs_and_runs_the_demo_config(self):
        run([sys.executable, "-m", "venv", self.venv], 120)
        python = os.path.join(self.venv, "bin", "python")
        # Not the tests' PYTHONPATH: it names this checkout, where a build's egg-info of
        # this version would tell pip the wheel is installed already.
        installing = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--timeout", "60", os.path.join(self.dist, f"{NAME}-py3-none-any.whl")],
            INSTALL_TIMEOUT, env=installing)
        env = {"PATH": os.path.dirname(python) + os.pathsep + os.environ.get("PATH", ""),
               "LANG": "C.UTF-8", "SENSELINK_STATE_DIR": self.state}
        where = run([python, "-c", "import senselink; print(senselink.__file__)"], 60,
                    env=env, cwd=self.state).strip()
        self.assertTrue(where.startswith(self.venv + os.sep), where)
        port = free_port()
        proc = spawn([os.path.join(self.venv, "bin", "twistd"), "--nodaemon", "--pidfile=",
                      "senselink", "-c", os.path.join(self.source, "examples", "demo.yml"),
                      "-p", str(port), "--interface", "127.0.0.1"], env, path=self.state)
        self.addCleanup(proc.stop)
        yield proc.wait_for(rf"Answering Kasa requests on UDP 127\.0\.0\.1:{port}")
        replies = yield ask_udp(port, len(DEMO_ALIASES))
        self.assertEqual(set(by_alias(replies)), DEMO_ALIASES)
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), proc.output)
        self.assertNotIn("Traceback", proc.output)
