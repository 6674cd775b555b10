"""A real mosquitto broker for tests: started on a free loopback port, stopped by PID.

Each L{Broker} writes its own config (anonymous, or a password file made by
C{mosquitto_passwd}; optionally TLS with certificates the test made) into a
temporary directory. Where mosquitto is missing the tests skip, saying how
to install it, unless the environment variable CI is set: then a missing
broker fails the run.
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile

from twisted.internet import defer, reactor, task, utils
from twisted.trial.unittest import FailTest, SkipTest

HOST = "127.0.0.1"
START_TIMEOUT = 10.0     # seconds for mosquitto to accept connections
STOP_TIMEOUT = 5.0       # seconds for mosquitto to exit after SIGTERM


def _find(name):
    found = shutil.which(name)
    if found is None:
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin"):
            candidate = os.path.join(folder, name)
            if os.access(candidate, os.X_OK):
                return candidate
    return found


MOSQUITTO = _find("mosquitto")
MOSQUITTO_PUB = _find("mosquitto_pub")
MOSQUITTO_PASSWD = _find("mosquitto_passwd")
# mosquitto's dynamic security plugin, shipped with Debian's mosquitto package
DYNAMIC_SECURITY = next(iter(sorted(glob.glob("/usr/lib/*/mosquitto_dynamic_security.so")
                                    + glob.glob("/usr/lib/mosquitto_dynamic_security.so"))),
                        "mosquitto_dynamic_security.so")


def under_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_mosquitto():
    """Skip (or, under CI, fail) when the broker or its tools are missing."""
    missing = [name for name, path in (("mosquitto", MOSQUITTO), ("mosquitto_pub", MOSQUITTO_PUB),
                                       ("mosquitto_passwd", MOSQUITTO_PASSWD)) if path is None]
    if not missing:
        return
    message = (f"{', '.join(missing)} not found; install the broker with: "
               f"apt-get install mosquitto mosquitto-clients")
    if under_ci():
        raise FailTest(f"CI is set and {message}")
    raise SkipTest(message)


def free_port():
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _accepts(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex((HOST, port)) == 0


class Broker:
    """One mosquitto process on C{127.0.0.1:port}; L{start} again reuses the port."""

    def __init__(self, users=None, tls=None, acl=None):
        """
        @param users: C{{name: password}}; when given, anonymous clients are refused.
        @param acl: C{{name: [(acltype, topic, allow), ...]}} for the users of
            C{users}, with mosquitto's dynamic security plugin (whose
            C{subscribePattern} denials answer SUBACK 0x80, which an
            C{acl_file} never does), e.g. C{("subscribePattern", "home/#", True)}.
        @param tls: C{{"ca_file", "cert_file", "key_file"}} of the server; the
            listener then speaks TLS only (and with C{"require_certificate": True}
            wants client certificates signed by that CA).
        """
        require_mosquitto()
        self.users = dict(users or {})
        self.tls = tls
        self.acl = acl
        self.host = HOST
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="senselink-mosquitto-")
        self.process = None
        self.starts = 0
        self.log_path = None

    # -- files --

    def _write_config(self):
        lines = [
            f"listener {self.port} {HOST}",
            f"allow_anonymous {'false' if self.users else 'true'}",
            "persistence false",
            # A file log is flushed line by line (stdout is buffered when redirected).
            f"log_dest file {self.log_path}",
            "log_type all",
            # As root mosquitto would switch to its own user and lose access to our files.
            f"user {_user_name()}",
        ]
        if self.users:
            password_file = os.path.join(self.directory, "passwords")
            for index, (name, password) in enumerate(self.users.items()):
                args = [MOSQUITTO_PASSWD, "-b"] + (["-c"] if index == 0 else []) + [
                    password_file, name, password]
                subprocess.run(args, check=True, timeout=20, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
            lines.append(f"password_file {password_file}")
        if self.acl is not None:
            lines.remove(f"password_file {password_file}")
            lines += [f"plugin {DYNAMIC_SECURITY}",
                      f"plugin_opt_config_file {self._write_dynamic_security()}"]
        if self.tls:
            lines += [f"cafile {self.tls['ca_file']}", f"certfile {self.tls['cert_file']}",
                      f"keyfile {self.tls['key_file']}"]
            if self.tls.get("require_certificate"):
                lines += ["require_certificate true"]
        path = os.path.join(self.directory, "mosquitto.conf")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _write_dynamic_security(self):
        """The dynamic security plugin's file: each user, its password and its own role."""
        import base64
        import hashlib
        import json
        clients, roles = [], []
        for name, password in self.users.items():
            salt = os.urandom(12)
            digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 101)
            clients.append({"username": name, "password": base64.b64encode(digest).decode(),
                            "salt": base64.b64encode(salt).decode(), "iterations": 101,
                            "roles": [{"rolename": f"role-{name}"}]})
            roles.append({"rolename": f"role-{name}", "acls": [
                {"acltype": kind, "topic": topic, "allow": allow, "priority": -index}
                for index, (kind, topic, allow) in enumerate(self.acl.get(name, ()))]})
        path = os.path.join(self.directory, "dynamic-security.json")
        with open(path, "w") as f:
            json.dump({"clients": clients, "roles": roles, "defaultACLAccess": {
                "publishClientSend": False, "publishClientReceive": True, "subscribe": False,
                "unsubscribe": True}}, f)
        return path

    # -- life --

    @property
    def pid(self):
        return self.process.pid if self.process is not None else None

    def start(self):
        """Start mosquitto; the Deferred fires with self once it accepts connections."""
        if self.process is not None:
            raise RuntimeError("broker already running")
        self.starts += 1
        self.log_path = os.path.join(self.directory, f"mosquitto-{self.starts}.log")
        config = self._write_config()
        with open(self._output_path(), "wb") as output:
            self.process = subprocess.Popen([MOSQUITTO, "-c", config], stdout=output,
                                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self._wait_accepting()

    def _wait_accepting(self):
        done = defer.Deferred()
        deadline = reactor.seconds() + START_TIMEOUT

        def check():
            if self.process is None:
                loop.stop()
                done.errback(FailTest("broker stopped while starting"))
            elif self.process.poll() is not None:
                loop.stop()
                self.process = None
                done.errback(FailTest(f"mosquitto exited while starting:\n{self.log()}"))
            elif _accepts(self.port):
                loop.stop()
                done.callback(self)
            elif reactor.seconds() > deadline:
                loop.stop()
                self.stop()
                done.errback(FailTest(f"mosquitto did not accept connections on port "
                                      f"{self.port} within {START_TIMEOUT} s:\n{self.log()}"))

        loop = task.LoopingCall(check)
        loop.start(0.02)
        return done

    def _end(self, sig):
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """Stop the broker (SIGTERM to its PID, SIGKILL if it lingers)."""
        self._end(signal.SIGTERM)

    def kill(self):
        """Kill the broker abruptly (SIGKILL to its PID), as a crash would."""
        self._end(signal.SIGKILL)

    def freeze(self):
        """Stop the broker in its tracks (SIGSTOP to its PID): it answers nothing."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self):
        """Let a frozen broker go on (SIGCONT to its PID)."""
        os.kill(self.process.pid, signal.SIGCONT)

    def cleanup(self):
        if self.process is not None and self.process.poll() is None:
            self.thaw()
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _output_path(self, start=None):
        return os.path.join(self.directory, f"output-{start or self.starts}.txt")

    def _read(self, path):
        if path is None or not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log(self, start=None):
        """The text the broker logged since it was last started (or of start number C{start})."""
        path = self.log_path if start is None else os.path.join(
            self.directory, f"mosquitto-{start}.log")
        return self._read(self._output_path(start)) + self._read(path)

    def connections(self, client_id, start=None):
        """How many times C{client_id} connected, per the broker's log."""
        return self.log(start).count(f" as {client_id} (")

    def subscriptions(self, client_id, start=None):
        """Topics C{client_id} subscribed to, in order, per the broker's log."""
        topics = []
        for line in self.log(start).splitlines():
            parts = line.split(" ", 3)
            # "<time>: <client id> <qos> <topic>"
            if len(parts) == 4 and parts[1] == client_id and parts[2] in ("0", "1", "2"):
                topics.append(parts[3])
        return topics

    # -- publishing --

    def publish(self, topic, payload, retain=False, qos=0, extra=()):
        """Publish with C{mosquitto_pub}; C{payload} is text, bytes, or None (empty)."""
        args = ["-h", HOST, "-p", str(self.port), "-t", topic, "-q", str(qos)]
        if retain:
            args.append("-r")
        if payload is None or payload == b"" or payload == "":
            args.append("-n")
        elif isinstance(payload, bytes):
            path = os.path.join(self.directory, f"payload-{os.getpid()}-{id(payload)}")
            with open(path, "wb") as f:
                f.write(payload)
            args += ["-f", path]
        else:
            args += ["-m", payload]
        if self.users:
            name, password = next(iter(self.users.items()))
            args += ["-u", name, "-P", password]
        args += list(extra)
        d = utils.getProcessOutputAndValue(MOSQUITTO_PUB, args, env=os.environ)

        def check(result):
            out, err, code = result
            if code != 0:
                raise FailTest(f"mosquitto_pub {topic} failed ({code}): "
                               f"{err.decode('utf-8', 'replace')}")
            return None
        return d.addCallback(check)


def _user_name():
    import pwd
    return pwd.getpwuid(os.getuid()).pw_name


@defer.inlineCallbacks
def started_broker(testcase, **kwargs):
    """A running L{Broker}, stopped and removed when C{testcase} ends."""
    broker = Broker(**kwargs)
    testcase.addCleanup(broker.cleanup)
    yield broker.start()
    return broker


OPENSSL = _find("openssl")


def make_certificates(directory, host=HOST):
    """A throwaway CA, a server certificate for C{host} and a client certificate.

    Returns C{{"ca_file", "server_cert", "server_key", "client_cert", "client_key"}}.
    Skips (fails under CI) when openssl is missing.
    """
    if OPENSSL is None:
        message = "openssl not found: apt-get install openssl"
        if under_ci():
            raise FailTest(f"CI is set and {message}")
        raise SkipTest(message)
    path = lambda name: os.path.join(directory, name)  # noqa: E731

    def run(*args):
        subprocess.run([OPENSSL, *args], check=True, timeout=60, cwd=directory,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=SenseLink test CA", "-keyout", path("ca.key"), "-out", path("ca.pem"))
    with open(path("server.ext"), "w") as f:
        f.write(f"subjectAltName=IP:{host}\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=senselink-test-{name}",
            "-keyout", path(f"{name}.key"), "-out", path(f"{name}.csr"))
        extra = ["-extfile", path("server.ext")] if name == "server" else []
        run("x509", "-req", "-days", "2", "-in", path(f"{name}.csr"), "-CA", path("ca.pem"),
            "-CAkey", path("ca.key"), "-CAcreateserial", "-out", path(f"{name}.pem"), *extra)
    return {"ca_file": path("ca.pem"), "server_cert": path("server.pem"),
            "server_key": path("server.key"), "client_cert": path("client.pem"),
            "client_key": path("client.key")}
