"""The wheel the Home Assistant app installs (senselink_app/senselink_twisted-<version>-...whl).

The Supervisor builds the app from its folder alone, so the package is there as
a wheel that contrib/app_wheel.py builds from the source. These tests keep the
two in step (the package's files, its requirements and entry points), and
install the wheel into a fresh virtualenv, as the app's image does, to run the
app's `run` script from it: the daemon answers Sense and serves its status page
with the files the wheel carries.
"""

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys
import sysconfig
import zipfile

import twisted
import yaml
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

import senselink
from tests.deploy_support import (ROOT, ask_udp, by_alias, dockerfile_instructions, spawn,
                                  stopped_cleanly, with_timeout)
from tests.httpserver import RawGet
from tests.support import free_port

APP = os.path.join(ROOT, "senselink_app")
NAME = f"senselink_twisted-{senselink.__version__}-py3-none-any.whl"
WHEEL = os.path.join(APP, NAME)
DIST_INFO = f"senselink_twisted-{senselink.__version__}.dist-info/"
REBUILD = "rebuild it with `python3 contrib/app_wheel.py` and commit it"
PLUGIN = "twisted/plugins/senselink_plugin.py"


def package_files():
    """{name in the wheel: content} for what the wheel must carry from this checkout."""
    files = {}
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, "senselink")):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            if not name.endswith((".pyc", ".pyo")):
                path = os.path.join(dirpath, name)
                files[os.path.relpath(path, ROOT).replace(os.sep, "/")] = read(path)
    files[PLUGIN] = read(os.path.join(ROOT, *PLUGIN.split("/")))
    return files


def read(path):
    with open(path, "rb") as f:
        return f.read()


def wheel_entries():
    with zipfile.ZipFile(WHEEL) as wheel:
        return {name: wheel.read(name) for name in wheel.namelist()}


def run(argv, **kwargs):
    """Run C{argv}, without the PYTHONPATH the tests run with: it names this checkout, where
    a build's senselink_twisted.egg-info of the same version would tell pip the wheel is
    installed already, and Python where to import senselink from."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env,
                            **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{argv} exited with {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result.stdout


class InStepTests(unittest.TestCase):

    def test_one_wheel_of_the_apps_version(self):
        with open(os.path.join(APP, "config.yaml"), encoding="utf-8") as f:
            self.assertEqual(yaml.safe_load(f)["version"], senselink.__version__)
        wheels = sorted(n for n in os.listdir(APP) if n.endswith(".whl"))
        self.assertEqual(wheels, [NAME], f"the app needs {NAME}: {REBUILD}")

    def test_the_app_dockerfile_installs_it(self):
        instructions = dockerfile_instructions(os.path.join(APP, "Dockerfile"))
        args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG")
        wheel = "senselink_twisted-${BUILD_VERSION}-py3-none-any.whl"
        self.assertEqual(args["SENSELINK_SOURCE"], f'"/src/{wheel}[all]"')
        self.assertIn(("COPY", f"{wheel} /src/"), instructions)
        self.assertEqual(args["BUILD_VERSION"], senselink.__version__)

    def test_the_package_files_are_the_sources(self):
        entries = wheel_entries()
        carried = {name: data for name, data in entries.items()
                   if not name.startswith(DIST_INFO)}
        expected = package_files()
        differ = sorted(name for name in expected.keys() & carried.keys()
                        if expected[name] != carried[name])
        problems = [f"{label}: {', '.join(names[:10])}" for label, names in (
            ("changed since the wheel was built", differ),
            ("not in the wheel", sorted(expected.keys() - carried.keys())),
            ("in the wheel only", sorted(carried.keys() - expected.keys()))) if names]
        self.assertEqual(problems, [], f"the app's wheel is out of step; {REBUILD}")

    def test_requirements_and_entry_points_are_setup_pys(self):
        """What setup.py declares now (setuptools' egg_info), against the wheel's METADATA."""
        base = os.path.abspath(self.mktemp())
        os.makedirs(base)
        run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", base], cwd=ROOT)
        [info] = [p for p in pathlib.Path(base).iterdir() if p.name.endswith(".egg-info")]
        declared = importlib.metadata.PathDistribution(info)
        with zipfile.ZipFile(WHEEL) as wheel:
            built = importlib.metadata.PathDistribution(zipfile.Path(wheel, DIST_INFO))
            for field in ("Name", "Version", "Requires-Python"):
                self.assertEqual(built.metadata[field], declared.metadata[field],
                                 f"{field}: {REBUILD}")
            self.assertEqual(sorted(built.requires), sorted(declared.requires), REBUILD)
            self.assertEqual(sorted(built.metadata.get_all("Provides-Extra")),
                             sorted(declared.metadata.get_all("Provides-Extra")), REBUILD)
            self.assertEqual(sorted((e.group, e.name, e.value) for e in built.entry_points),
                             sorted((e.group, e.name, e.value) for e in declared.entry_points),
                             REBUILD)

    def test_record_lists_every_file(self):
        entries = wheel_entries()
        record = entries[DIST_INFO + "RECORD"].decode().splitlines()
        listed = {line.split(",")[0] for line in record}
        self.assertEqual(listed, set(entries))


class InstalledTests(unittest.TestCase):
    """pip installs the wheel into a fresh virtualenv, as the image does; the app runs from it."""

    def setUp(self):
        self.venv = os.path.abspath(self.mktemp())
        run([sys.executable, "-m", "venv", self.venv])
        self.python = os.path.join(self.venv, "bin", "python")
        # The dependencies come from this interpreter's site-packages, named in a .pth
        # file as plain paths: the .pth files there (this checkout's editable install)
        # are not read, so `senselink` can only come from the wheel.
        purelib = run([self.python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                          "['purelib'])"]).strip()
        here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                os.path.dirname(os.path.dirname(twisted.__file__)),
                os.path.dirname(os.path.dirname(yaml.__file__))}
        with open(os.path.join(purelib, "dependencies.pth"), "w") as f:
            f.write("\n".join(sorted(here)) + "\n")
        run([self.python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
             "--disable-pip-version-check", WHEEL])
        # The twistd script pip makes when it installs Twisted into an image.
        self.twistd = os.path.join(self.venv, "bin", "twistd")
        with open(self.twistd, "w") as f:
            f.write(f"#!{self.python}\nimport sys\nfrom twisted.scripts.twistd import run\n"
                    f"sys.exit(run())\n")
        os.chmod(self.twistd, 0o755)

    def test_imports_come_from_the_wheel(self):
        shown = json.loads(run([self.python, "-c", (
            "import json, senselink, senselink.web, twisted.plugins.senselink_plugin as p\n"
            "from twisted.plugin import IPlugin, getPlugins\n"
            "import twisted.plugins\n"
            "names = [x.tapname for x in getPlugins(IPlugin, twisted.plugins)"
            " if getattr(x, 'tapname', None) == 'senselink']\n"
            "print(json.dumps([senselink.__file__, senselink.web.__file__, p.__file__,"
            " names]))")], cwd=self.venv))
        for path in shown[:3]:
            self.assertTrue(path.startswith(self.venv + os.sep), path)
        self.assertEqual(shown[3], ["senselink"])

    @defer.inlineCallbacks
    def test_the_run_script_starts_the_daemon_from_it(self):
        data, config_dir = os.path.abspath(self.mktemp()), os.path.abspath(self.mktemp())
        os.makedirs(data)
        web_port = free_port()
        with open(os.path.join(data, "options.json"), "w") as f:
            json.dump({"config_file": "senselink.yml", "log_level": "info",
                       "web_port": web_port}, f)
        env = {"PATH": os.path.dirname(self.twistd) + os.pathsep + os.environ.get("PATH", ""),
               "LANG": "C.UTF-8"}
        proc = spawn([self.python, os.path.join(APP, "run"), "--data", data, "--config-dir",
                      config_dir, "--", "-p", "0", "--interface", "127.0.0.1"], env, path=data)
        self.addCleanup(proc.stop)
        yield proc.wait_for(r"senselink app: starting: --nodaemon")
        yield proc.wait_for(r"SenseLink started from " + re.escape(
            os.path.join(config_dir, "senselink.yml")))
        port = int((yield proc.wait_for(r"Answering Kasa requests on UDP [0-9.]+:(\d+)")).group(1))
        self.assertEqual(by_alias((yield ask_udp(port, 1))), {"SenseLink demo": 0})
        yield proc.wait_for(rf"Web interface on http://127\.0\.0\.1:{web_port}/")
        for path in (b"/", b"/static/status.js", b"/static/status.css", b"/static/icon.svg"):
            answer = yield self.fetch(web_port, path)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), (path, answer[:200]))
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), proc.output)
        self.assertTrue(os.path.exists(os.path.join(data, "senselink-state.json")))
        self.assertNotIn("Traceback", proc.output)

    @defer.inlineCallbacks
    def fetch(self, port, path):
        client = RawGet(path)
        yield with_timeout(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                                           client))
        return (yield with_timeout(client.ended))
