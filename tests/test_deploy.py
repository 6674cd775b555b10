"""The deployment files: Dockerfile, .dockerignore, docker-compose.yml, the systemd unit.

No Docker engine runs here: the image's command and health check are run
outside Docker, from a `setup.py build` tree (what `pip install` puts into
the image), in a directory of their own.
"""

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import yaml
from twisted.internet import defer
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

from senselink import config as _config
from senselink import tap
from tests.deploy_support import (PORT_LINES, ROOT, ask_udp, by_alias, dockerfile_instructions,
                                  spawn, stopped_cleanly, twistd_executable)

CONFIG = """\
sources:
  - static:
      plugs:
        - Fridge:
            alias: "Fridge"
            mac: 53:75:31:F6:4D:01
            max_watts: 120
"""


def dockerfile_values(name):
    return [rest for word, rest in dockerfile_instructions() if word == name]


def exec_form(text):
    """The JSON array of an exec-form CMD (after any --options of HEALTHCHECK)."""
    return json.loads(text[text.index("["):])


def build_tree(testcase):
    """`setup.py build` into a temporary directory: the files pip installs."""
    base = os.path.abspath(testcase.mktemp())
    subprocess.run([sys.executable, "setup.py", "-q", "build", "--build-base", base],
                   cwd=ROOT, check=True, capture_output=True, timeout=120)
    return os.path.join(base, "lib")


def image_env(lib, **extra):
    """An environment like the image's: the installed package only, not this worktree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONFIG_LOCATION", "LOGLEVEL", "SENSE_RESPONSE", "PYTHONPATH")}
    env["PYTHONPATH"] = lib
    env.update(extra)
    return env


class DockerfileTests(unittest.TestCase):

    def test_instructions(self):
        self.assertEqual(dockerfile_values("FROM"), ["python:3.11-slim"])
        self.assertEqual(exec_form(dockerfile_values("CMD")[0]),
                         ["twistd", "--nodaemon", "--pidfile=", "senselink"])
        self.assertEqual(dockerfile_values("EXPOSE"), ["9999/udp 9999/tcp"])
        self.assertEqual(dockerfile_values("USER"), ["senselink"])
        [health] = dockerfile_values("HEALTHCHECK")
        self.assertEqual(exec_form(health), ["python", "-m", "senselink", "probe", "--target",
                                             "127.0.0.1", "--count", "1", "--timeout", "5"])
        self.assertTrue(any("pip install" in run and "/src" in run
                            for run in dockerfile_values("RUN")))
        # The health check ends before Docker's own timeout for it.
        self.assertLess(5, int(re.search(r"--timeout=(\d+)s", health).group(1)))

    def test_readme_describes_the_image(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("## Deployment"):]
        self.assertIn(" ".join(exec_form(dockerfile_values("CMD")[0])), section)
        self.assertIn(" ".join(exec_form(dockerfile_values("HEALTHCHECK")[0])), section)
        self.assertIn(f"`EXPOSE {dockerfile_values('EXPOSE')[0]}`", section)
        self.assertIn(f"non-root user `{dockerfile_values('USER')[0]}`", section)
        self.assertIn(f"`{dockerfile_values('FROM')[0]}`", section)
        for word in ("CONFIG_LOCATION", "LOGLEVEL", "SENSE_RESPONSE", "network_mode: host",
                     "SIGHUP", "systemctl reload senselink", "--pidfile", "--logfile",
                     "python -m senselink probe"):
            self.assertIn(word, section)
        with open(os.path.join(ROOT, "contrib", "senselink.service")) as f:
            exec_start = re.search(r"^ExecStart=(.*)$", f.read(), re.M).group(1)
        self.assertIn(exec_start, section)

    def test_dockerignore_keeps_what_pip_needs(self):
        with open(os.path.join(ROOT, ".dockerignore")) as f:
            patterns = [line.strip() for line in f
                        if line.strip() and not line.startswith("#")]

        def ignored(path):
            return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.lstrip("*/"))
                       or path.startswith(p.rstrip("/") + "/") for p in patterns)

        needed = ["setup.py", "README.md", "senselink/__init__.py", "senselink/tap.py",
                  "senselink/probe.py", "twisted/plugins/senselink_plugin.py"]
        self.assertEqual([p for p in needed if ignored(p)], [])
        for path in (".git/config", "tests/test_deploy.py", "config.yml",
                     "senselink/__pycache__/x.pyc", "energy.state.json"):
            self.assertTrue(ignored(path), path)

    def test_compose(self):
        with open(os.path.join(ROOT, "docker-compose.yml")) as f:
            compose = yaml.safe_load(f)
        service = compose["services"]["senselink"]
        self.assertEqual(service["network_mode"], "host")
        self.assertEqual(service["build"], ".")
        self.assertEqual(service["restart"], "unless-stopped")
        self.assertIn("./config.yml:/etc/senselink/config.yml:ro", service["volumes"])
        self.assertIn("senselink-state:/var/lib/senselink", service["volumes"])
        self.assertIn("senselink-state", compose["volumes"])
        self.assertNotIn("ports", service)     # meaningless with host networking


class ConfigLocationTests(unittest.TestCase):
    """CONFIG_LOCATION chooses the config only when -c is not given (as in the image)."""

    def options(self, argv, **env):
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("CONFIG_LOCATION", "LOGLEVEL", "SENSE_RESPONSE")}
        environ.update(env)
        self.patch(os, "environ", environ)
        options = tap.Options()
        options.parseOptions(argv)
        return options

    def test_precedence(self):
        self.assertEqual(self.options([])["config"], _config.DEFAULT_PATH)
        self.assertEqual(_config.DEFAULT_PATH, "/etc/senselink/config.yml")
        self.assertEqual(self.options([], CONFIG_LOCATION="/cfg/a.yml")["config"], "/cfg/a.yml")
        self.assertEqual(self.options(["-c", "/cfg/b.yml"], CONFIG_LOCATION="/cfg/a.yml")["config"],
                         "/cfg/b.yml")

    def test_loglevel_and_sense_response(self):
        self.assertEqual(self.options([], LOGLEVEL="debug")["log-level"], "DEBUG")
        self.assertEqual(self.options(["-l", "error"], LOGLEVEL="debug")["log-level"], "ERROR")
        self.assertTrue(self.options([], SENSE_RESPONSE="False")["quiet"])
        self.assertFalse(self.options([], SENSE_RESPONSE="true")["quiet"])


class ImageCommandTests(unittest.TestCase):
    """The image's CMD and HEALTHCHECK, run exactly, outside Docker."""

    def setUp(self):
        self.twistd = twistd_executable()
        self.lib = build_tree(self)
        # The image builds Twisted's plugin cache as root, so that its user
        # never has to write it: run the same command on the build tree.
        [install] = [run for run in dockerfile_values("RUN") if "pip install" in run]
        code = re.search(r'python -c "([^"]+)"', install).group(1)
        subprocess.run([sys.executable, "-c", code], env=image_env(self.lib), check=True,
                       capture_output=True, timeout=120)
        self.cache = os.path.join(self.lib, "twisted", "plugins", "dropin.cache")
        self.cache_stamp = os.stat(self.cache).st_mtime_ns
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.config = os.path.join(self.workdir, "config.yml")
        with open(self.config, "w") as f:
            f.write(CONFIG)

    def command(self, *extra):
        argv = exec_form(dockerfile_values("CMD")[0])
        self.assertEqual(argv[0], "twistd")
        return [self.twistd] + argv[1:] + list(extra)

    def health_command(self, port, timeout=None):
        argv = exec_form(dockerfile_values("HEALTHCHECK")[0])
        self.assertEqual(argv[0], "python")
        argv = [sys.executable] + argv[1:] + ["--port", str(port)]
        if timeout is not None:
            argv += ["--timeout", str(timeout)]
        return argv

    def start(self, **env):
        proc = spawn(self.command("-p", "0", "--interface", "127.0.0.1"),
                     image_env(self.lib, **env), path=self.workdir)
        self.addCleanup(proc.stop)
        return proc

    @defer.inlineCallbacks
    def test_command_serves_and_health_check_passes(self):
        proc = self.start(CONFIG_LOCATION=self.config, LOGLEVEL="DEBUG")
        port = int((yield proc.wait_for(PORT_LINES)).group(1))
        yield proc.wait_for(r"SenseLink started from " + re.escape(self.config))
        self.assertEqual(by_alias((yield ask_udp(port, 1))), {"Fridge": 120})
        argv = self.health_command(port)
        out, err, code = yield getProcessOutputAndValue(argv[0], argv[1:],
                                                        env=image_env(self.lib),
                                                        path=self.workdir)
        self.assertEqual(code, 0, (out, err))
        self.assertIn(b"Fridge", out)
        # LOGLEVEL=DEBUG reached the daemon: requests are logged.
        yield proc.wait_for(r"Sense request from 127\.0\.0\.1: 1 replies")
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), (proc.reason, proc.output))
        self.assertIn("Server Shut Down.", proc.output)
        self.assertNotIn("Traceback", proc.output)
        self.assertNotIn("Unable to write to plugin cache", proc.output)
        self.assertEqual(os.stat(self.cache).st_mtime_ns, self.cache_stamp,
                         "the daemon rewrote the plugin cache built with the image")

    @defer.inlineCallbacks
    def test_default_config_path(self):
        """Without CONFIG_LOCATION the image reads /etc/senselink/config.yml."""
        if os.path.exists(_config.DEFAULT_PATH):
            raise unittest.SkipTest(f"{_config.DEFAULT_PATH} exists on this machine")
        proc = spawn(self.command(), image_env(self.lib), path=self.workdir)
        code = yield proc.ended
        self.assertEqual(code, 1)
        self.assertIn("senselink: invalid config:\n/etc/senselink/config.yml: cannot read config",
                      proc.output)

    @defer.inlineCallbacks
    def test_quiet_mode_fails_the_health_check(self):
        """SENSE_RESPONSE=false: the daemon listens but never answers, so it is not healthy."""
        proc = self.start(CONFIG_LOCATION=self.config, SENSE_RESPONSE="false")
        port = int((yield proc.wait_for(PORT_LINES)).group(1))
        yield proc.wait_for(r"quiet mode: not answering")
        argv = self.health_command(port, timeout=0.5)
        out, err, code = yield getProcessOutputAndValue(argv[0], argv[1:],
                                                        env=image_env(self.lib),
                                                        path=self.workdir)
        self.assertEqual(code, 1, (out, err))
        self.assertIn(b"No plug answered", out)


class SystemdUnitTests(unittest.TestCase):
    path = os.path.join(ROOT, "contrib", "senselink.service")

    def unit(self):
        with open(self.path) as f:
            text = f.read()
        settings = {}
        for line in text.splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                key, _, value = line.partition("=")
                settings.setdefault(key.strip(), []).append(value.strip())
        return text, settings

    def test_settings(self):
        text, unit = self.unit()
        self.assertEqual(shlex.split(unit["ExecStart"][0])[1:],
                         ["--nodaemon", "--pidfile=", "senselink", "-c",
                          "/etc/senselink/config.yml"])
        self.assertTrue(unit["ExecStart"][0].startswith("/opt/senselink/bin/twistd "))
        expected = {
            "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30",
            "Restart": "on-failure", "User": "senselink", "NoNewPrivileges": "yes",
            "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
            "StateDirectory": "senselink", "WorkingDirectory": "/var/lib/senselink",
            "ExecReload": "/bin/kill -HUP $MAINPID", "AmbientCapabilities": "",
            "CapabilityBoundingSet": "",
            "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        }
        self.assertEqual({k: unit.get(k, [None])[0] for k in expected}, expected)

    def test_systemd_analyze_verify(self):
        """`systemd-analyze verify` accepts the unit (with ExecStart pointing at this twistd)."""
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise unittest.SkipTest("systemd-analyze is not installed (apt-get install systemd)")
        twistd = twistd_executable()
        text, _ = self.unit()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        unit = os.path.join(directory, "senselink.service")
        with open(unit, "w") as f:
            f.write(text.replace("/opt/senselink/bin/twistd", twistd))
        result = subprocess.run([analyze, "verify", unit], capture_output=True, text=True,
                                timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr + result.stdout)
        complaints = [line for line in (result.stderr + result.stdout).splitlines()
                      if "senselink.service" in line]
        self.assertEqual(complaints, [])
