"""The Home Assistant app (senselink_app/): its files checked against the Supervisor's
documented schema, its Dockerfile against the project's, its demo config, and its
`run` script run outside Docker with a fake /data/options.json, a fake
SUPERVISOR_TOKEN and a fake Supervisor in front of the test Home Assistant server.
"""

import json
import os
import re
import stat
import struct
import subprocess
import sys
import textwrap

import yaml
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

import senselink
from senselink.config import load
from tests.httpserver import RawGet
from tests.deploy_support import (ROOT, ask_udp, by_alias, child_env, dockerfile_instructions,
                                  spawn, stopped_cleanly, twistd_executable, with_timeout)
from tests.support import free_port
from tests.supervisor_server import FakeSupervisor

APP = os.path.join(ROOT, "senselink_app")
TOKEN = "fake-supervisor-token-for-the-app"

# The Supervisor's documented app configuration (developers.home-assistant.io, "App
# configuration"): required keys and the types of the optional ones.
REQUIRED = {"name": str, "version": str, "slug": str, "description": str, "arch": list}
ARCHES = {"aarch64", "amd64"}
BOOLEANS = {"host_network", "host_ipc", "host_dbus", "host_pid", "host_uts", "hassio_api",
            "homeassistant_api", "docker_api", "full_access", "audio", "video", "gpio", "usb",
            "uart", "udev", "devicetree", "kernel_modules", "stdin", "legacy", "auth_api",
            "ingress", "ingress_stream", "panel_admin", "init", "realtime", "journald",
            "tmpfs"}
STRINGS = {"url", "webui", "homeassistant", "hassio_role", "ingress_entry", "panel_icon",
           "panel_title", "backup_pre", "backup_post", "image", "watchdog"}
CHOICES = {"startup": {"initialize", "system", "services", "application", "once"},
           "boot": {"auto", "manual", "manual_only"}, "backup": {"hot", "cold"},
           "stage": {"stable", "experimental", "deprecated"}}
OTHERS = {"machine": list, "ports": dict, "ports_description": dict, "devices": list,
          "privileged": list, "map": list, "environment": dict, "options": dict,
          "schema": dict, "timeout": int, "ingress_port": int, "discovery": list,
          "services": list, "backup_exclude": list, "apparmor": (bool, str),
          "breaking_versions": list, "ulimits": dict}
MAP_TYPES = {"homeassistant_config", "addon_config", "ssl", "addons", "backup", "share",
             "media", "all_addon_configs", "data"}
# The option types of the schema, as documented: str / str(min,) / str(,max) / str(min,max),
# bool, int and float with optional ranges, email, url, password, port, match(REGEX),
# list(val1|val2|...), device / device(filter); a trailing ? makes one optional.
SCHEMA_TYPE = re.compile(r"(?:(?:str|password)(?:\(\d*,\d*\))?|bool|email|url|port"
                         r"|int(?:\(-?\d*,-?\d*\))?|float(?:\(-?[\d.]*,-?[\d.]*\))?"
                         r"|match\(.+\)|list\([^|()]+(?:\|[^|()]+)*\)"
                         r"|device(?:\(subsystem=\w+\))?)\??")


def read_yaml(*parts):
    with open(os.path.join(*parts), encoding="utf-8") as f:
        return yaml.safe_load(f)


def app_config():
    return read_yaml(APP, "config.yaml")


class AppFilesTests(unittest.TestCase):
    """The app folder as the Supervisor reads it."""

    def test_repository(self):
        repository = read_yaml(ROOT, "repository.yaml")
        self.assertIsInstance(repository["name"], str)
        self.assertLessEqual(set(repository), {"name", "url", "maintainer"})

    def test_required_keys(self):
        config = app_config()
        for key, kind in REQUIRED.items():
            self.assertIsInstance(config.get(key), kind, key)
        self.assertRegex(config["slug"], r"^[-_.A-Za-z0-9]+$")
        self.assertEqual(config["version"], senselink.__version__)
        self.assertTrue(config["arch"])
        self.assertLessEqual(set(config["arch"]), ARCHES)

    def test_documented_keys_and_types(self):
        config = app_config()
        known = set(REQUIRED) | BOOLEANS | STRINGS | set(CHOICES) | set(OTHERS)
        self.assertEqual(sorted(set(config) - known), [])
        for key, value in config.items():
            if key in BOOLEANS:
                self.assertIsInstance(value, bool, key)
            elif key in STRINGS:
                self.assertIsInstance(value, str, key)
            elif key in CHOICES:
                self.assertIn(value, CHOICES[key], key)
            elif key in OTHERS:
                self.assertIsInstance(value, OTHERS[key], key)
                self.assertFalse(isinstance(value, bool) and OTHERS[key] is not bool, key)
        self.assertTrue(config["ingress_port"] == 0 or 1 <= config["ingress_port"] <= 65535)
        self.assertTrue(10 <= config.get("timeout", 10) <= 300)
        for entry in config["map"]:
            self.assertIn(entry["type"], MAP_TYPES)
            self.assertIsInstance(entry.get("read_only", True), bool)

    def test_what_the_app_needs(self):
        config = app_config()
        self.assertIs(config["host_network"], True)          # the Sense broadcast
        self.assertIs(config["homeassistant_api"], True)     # SUPERVISOR_TOKEN for Core
        self.assertIs(config["ingress"], True)
        self.assertEqual(config["ingress_port"], 0)          # host network: the Supervisor picks
        self.assertIn({"type": "addon_config", "read_only": False}, config["map"])
        self.assertNotIn("ports", config)                    # meaningless on the host network

    def test_options_and_schema(self):
        config = app_config()
        options, schema = config["options"], config["schema"]
        self.assertEqual(set(schema), {"config_file", "log_level", "web_port"})
        for key, kind in schema.items():
            self.assertIsInstance(kind, str, key)
            self.assertRegex(kind, "^" + SCHEMA_TYPE.pattern + "$")
            # Required options have a default; optional ones ('?') must have none.
            self.assertEqual(key in options, not kind.endswith("?"), key)
        self.assertLessEqual(set(options), set(schema))
        levels = re.fullmatch(r"list\((.*)\)", schema["log_level"]).group(1).split("|")
        self.assertIn(options["log_level"], levels)
        self.assertEqual(options["config_file"], "senselink.yml")

    def test_translations(self):
        translations = read_yaml(APP, "translations", "en.yaml")
        self.assertEqual(set(translations), {"configuration"})
        self.assertEqual(set(translations["configuration"]), set(app_config()["schema"]))
        for key, text in translations["configuration"].items():
            self.assertIsInstance(text["name"], str, key)
            self.assertIsInstance(text["description"], str, key)

    def test_files(self):
        for name in ("config.yaml", "Dockerfile", "run", "DOCS.md", "README.md", "CHANGELOG.md",
                     "icon.png", "senselink.yml", os.path.join("translations", "en.yaml")):
            self.assertTrue(os.path.isfile(os.path.join(APP, name)), name)
        self.assertTrue(os.stat(os.path.join(APP, "run")).st_mode & stat.S_IXUSR)
        with open(os.path.join(APP, "icon.png"), "rb") as f:
            head = f.read(24)
        self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", head[16:24])
        self.assertEqual((width, height), (128, 128))       # square, the recommended size

    def test_only_one_app_config_in_the_repository(self):
        """The Supervisor reads every config.{yaml,yml,json} below the repository root
        (outside dot folders and rootfs) as an app."""
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, text=True,
                                check=True, timeout=60).stdout.splitlines()
        apps = [path for path in listed
                if re.fullmatch(r"config\.(yaml|yml|json)", os.path.basename(path))
                and not any(part.startswith(".") or part == "rootfs"
                            for part in path.split("/"))]
        self.assertEqual(apps, ["senselink_app/config.yaml"])

    def test_docs_describe_the_options(self):
        with open(os.path.join(APP, "DOCS.md"), encoding="utf-8") as f:
            docs = f.read()
        for key in app_config()["schema"]:
            self.assertIn(f"`{key}`", docs)
        for word in ("172.30.32.2", "/data/senselink-state.json", "/addon_configs/",
                     "url: supervisor", "senselink_twisted-<version>-py3-none-any.whl"):
            self.assertIn(word, docs)


class SameBuildTests(unittest.TestCase):
    """The project's Dockerfile and the app's build the same way."""

    def setUp(self):
        self.image = dockerfile_instructions(os.path.join(ROOT, "Dockerfile"))
        self.app = dockerfile_instructions(os.path.join(APP, "Dockerfile"))

    def values(self, instructions, name):
        return [rest for word, rest in instructions if word == name]

    def test_base_install_and_health_check(self):
        for name in ("FROM", "HEALTHCHECK"):
            self.assertEqual(self.values(self.image, name), self.values(self.app, name), name)
        [install] = [run for run in self.values(self.image, "RUN") if "pip install" in run]
        self.assertIn(install, self.values(self.app, "RUN"))
        self.assertIn('pip install --no-cache-dir "${SENSELINK_SOURCE}"', install)
        self.assertIn('SENSELINK_SOURCE="/src[all]"', self.values(self.image, "ARG"))

    def test_app_installs_the_package_of_its_version(self):
        """From the wheel in its folder (tests/test_appwheel.py keeps it in step)."""
        args = dict(a.split("=", 1) for a in self.values(self.app, "ARG"))
        self.assertEqual(args["BUILD_VERSION"], app_config()["version"])
        wheel = args["SENSELINK_SOURCE"].strip('"').removesuffix("[all]")
        self.assertEqual(wheel, "/src/senselink_twisted-${BUILD_VERSION}-py3-none-any.whl")
        version = wheel.replace("${BUILD_VERSION}", app_config()["version"])
        self.assertTrue(os.path.isfile(os.path.join(APP, os.path.basename(version))), version)

    def test_users_and_state(self):
        self.assertEqual(self.values(self.image, "USER"), ["senselink"])
        self.assertEqual(self.values(self.image, "VOLUME"), ["/var/lib/senselink"])
        self.assertIn("SENSELINK_STATE_DIR=/var/lib/senselink", self.values(self.image, "ENV"))
        # The app runs as root: the Supervisor mounts /data and /config owned by root.
        self.assertEqual(self.values(self.app, "USER"), [])
        self.assertIn("SENSELINK_STATE_DIR=/data", self.values(self.app, "ENV"))

    def test_app_command_and_labels(self):
        _wheel, copy = self.values(self.app, "COPY")
        *sources, target = copy.split()
        for source in sources:
            self.assertTrue(os.path.exists(os.path.join(APP, source)), source)
        [cmd] = self.values(self.app, "CMD")
        self.assertEqual(json.loads(cmd), [target.rstrip("/") + "/run"])
        [label] = self.values(self.app, "LABEL")
        for word in ('io.hass.version="${BUILD_VERSION}"', 'io.hass.type="app"',
                     'io.hass.arch="aarch64|amd64"'):
            self.assertIn(word, label)


class DefaultConfigTests(unittest.TestCase):

    def test_check_passes(self):
        path = os.path.join(APP, "senselink.yml")
        result = subprocess.run([sys.executable, "-m", "senselink", "check", "-c", path],
                                env=child_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"{path}: valid; 1 plug, 1 reported to Sense", result.stdout)

    def test_the_commented_hass_source_works_inside_the_app(self):
        with open(os.path.join(APP, "senselink.yml"), encoding="utf-8") as f:
            text = f.read()
        start = text.index("  # - hass:")
        uncommented = text[:start] + re.sub(r"(?m)^  # ?", "  ", text[start:])
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write(uncommented)
        self.patch(os, "environ", {**os.environ, "SUPERVISOR_TOKEN": TOKEN})
        config = load(path)
        self.assertEqual(sorted(config.plugs), ["Demo", "Kitchen_Lights", "Washer"])
        self.assertIsNone(config.sources[1].options["url"])


class RunScriptTests(unittest.TestCase):
    """senselink_app/run, outside Docker: /data and /config are folders of the test."""

    def setUp(self):
        self.data = os.path.abspath(self.mktemp())
        self.config_dir = os.path.abspath(self.mktemp())
        os.makedirs(self.data)
        self.ingress_port = free_port()
        self.supervisor = FakeSupervisor(self, TOKEN, self.ingress_port)

    def options(self, **options):
        with open(os.path.join(self.data, "options.json"), "w") as f:
            json.dump(options, f)

    def start(self, **env):
        twistd = twistd_executable()
        env = child_env(SUPERVISOR_TOKEN=TOKEN, SUPERVISOR_API=self.supervisor.url,
                        PATH=os.path.dirname(twistd) + os.pathsep + os.environ.get("PATH", ""),
                        **env)
        for name in ("SENSELINK_STATE_DIR", "STATE_DIRECTORY", "NOTIFY_SOCKET"):
            env.pop(name, None)
        proc = spawn([sys.executable, os.path.join(APP, "run"), "--data", self.data,
                      "--config-dir", self.config_dir, "--",
                      "-p", "0", "--interface", "127.0.0.1"], env, path=ROOT)
        self.addCleanup(proc.stop)
        return proc

    @defer.inlineCallbacks
    def test_first_start_creates_the_demo_config(self):
        web_port = free_port()
        self.options(config_file="senselink.yml", log_level="debug", web_port=web_port)
        proc = self.start()
        config = os.path.join(self.config_dir, "senselink.yml")
        yield proc.wait_for(r"SenseLink started from " + re.escape(config))
        with open(config) as f, open(os.path.join(APP, "senselink.yml")) as demo:
            self.assertEqual(f.read(), demo.read())
        self.assertIn(f"created a demo config at {config}", proc.output)
        self.assertIn(f"-l DEBUG --ingress-port {self.ingress_port} --web-port {web_port}",
                      proc.output)
        self.assertEqual(self.supervisor.info_requests, [f"Bearer {TOKEN}".encode()])
        state = os.path.join(self.data, "senselink-state.json")
        yield proc.wait_for(re.escape(f"Energy counters are kept in {state}, saved every 60 s "
                                      f"(in the state directory $SENSELINK_STATE_DIR)"))
        port = int((yield proc.wait_for(r"Answering Kasa requests on UDP [0-9.]+:(\d+)")).group(1))
        self.assertEqual(by_alias((yield ask_udp(port, 1))), {"SenseLink demo": 0})
        # web_port: the status page for the LAN.
        yield proc.wait_for(rf"Web interface on http://127\.0\.0\.1:{web_port}/")
        page = yield self.fetch(web_port)
        self.assertIn(b"HTTP/1.1 200 OK", page)
        self.assertIn(b"SenseLink demo", page)
        # The ingress port serves the Supervisor's proxy (172.30.32.2) only, not us.
        yield proc.wait_for(rf"Web interface on http://127\.0\.0\.1:{self.ingress_port}/ .*"
                            rf"only 172\.30\.32\.2 may connect")
        self.assertEqual((yield self.fetch(self.ingress_port)), b"")
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), proc.output)
        self.assertTrue(os.path.exists(state))
        self.assertNotIn("Traceback", proc.output)

    @defer.inlineCallbacks
    def fetch(self, port):
        client = RawGet()
        yield with_timeout(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                                           client))
        return (yield with_timeout(client.ended))

    @defer.inlineCallbacks
    def test_hass_source_authenticates_with_the_supervisor_token(self):
        os.makedirs(self.config_dir)
        with open(os.path.join(self.config_dir, "mine.yml"), "w") as f:
            f.write(textwrap.dedent("""\
                sources:
                  - hass:
                      plugs:
                        - Kettle:
                            alias: "Kettle"
                            mac: 53:75:31:F6:4A:09
                            entity_id: sensor.kettle_power
                """))
        self.options(config_file="mine.yml", log_level="info")
        home = self.supervisor.home
        home.set_state("sensor.kettle_power", "2000")
        proc = self.start()
        yield proc.wait_for(r"SenseLink started from " + re.escape(
            os.path.join(self.config_dir, "mine.yml")))
        yield with_timeout(home.when(lambda: home.commands))
        self.assertEqual(home.auth_messages, [{"type": "auth", "access_token": TOKEN}])
        self.assertEqual(home.connections[0].http_request_path, "/core/api/websocket")
        yield proc.wait_for(r"Connected to Home Assistant .* at "
                            r"ws://127\.0\.0\.1:\d+/core/api/websocket")
        port = int((yield proc.wait_for(r"Answering Kasa requests on UDP [0-9.]+:(\d+)")).group(1))
        replies = {}
        for _ in range(50):                 # the value follows the subscription at once
            replies = by_alias((yield ask_udp(port, 1)))
            if replies == {"Kettle": 2000}:
                break
            yield task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(replies, {"Kettle": 2000})
        self.assertNotIn("created a demo config", proc.output)
        self.assertNotIn(TOKEN, proc.output)
        yield proc.stop()
        self.assertTrue(stopped_cleanly(proc), proc.output)

    @defer.inlineCallbacks
    def test_bad_options_are_one_line(self):
        self.options(config_file="senselink.yml", log_level="loud")
        proc = self.start()
        code = yield proc.ended
        self.assertEqual(code, 1)
        self.assertIn("senselink app: log_level must be one of debug, info, warning, error, "
                      "got 'loud'", proc.output)
        self.assertFalse(os.path.exists(self.config_dir))
