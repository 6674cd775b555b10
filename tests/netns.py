"""Network namespaces for LAN tests: made by the test, deleted when it ends.

A L{Lab} creates namespaces (``ip netns add``), veth pairs created
directly inside them (so interface names never meet the host's), bridges
and addresses, and runs processes inside them (``ip netns exec``): the
daemon as users start it, and Kasa clients (L{tests.lanclient}). Traffic
never leaves the namespaces. Everything is undone by the test's cleanups,
in reverse order, even when the test fails: processes are stopped by PID,
then the namespaces are deleted (their interfaces go with them).

Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2; without them
L{require} raises SkipTest saying why.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid

from twisted.internet import defer, protocol, reactor
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import FailTest, SkipTest

from tests.support import WAIT, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IP = shutil.which("ip") or "/usr/sbin/ip"


def require():
    """SkipTest with the reason when this machine cannot make network namespaces."""
    if os.geteuid() != 0:
        raise SkipTest("network namespace tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
    if not os.path.exists(IP):
        raise SkipTest("network namespace tests need iproute2's `ip` (apt-get install iproute2)")
    name = f"slcheck-{uuid.uuid4().hex[:8]}"
    done = subprocess.run([IP, "netns", "add", name], capture_output=True, text=True)
    if done.returncode != 0:
        raise SkipTest(f"cannot create a network namespace here: {done.stderr.strip()}")
    subprocess.run([IP, "netns", "del", name], capture_output=True)


def child_env():
    return {**os.environ, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1"}


class Output(protocol.ProcessProtocol):
    """Collects a process's output; C{ended} fires with its exit status."""

    def __init__(self):
        self.output = b""
        self.ended = defer.Deferred()
        self.running = True

    def outReceived(self, data):
        self.output += data[:1_000_000]

    errReceived = outReceived

    def processEnded(self, reason):
        self.running = False
        self.ended.callback(reason.value)

    @property
    def text(self):
        return self.output.decode(errors="replace")


class Lab:
    """Namespaces, links and processes for one test."""

    def __init__(self, testcase):
        require()
        self.testcase = testcase
        self.tag = uuid.uuid4().hex[:6]

    def ip(self, *args):
        done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=WAIT)
        if done.returncode != 0:
            raise FailTest(f"ip {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def namespace(self, role):
        """A new namespace (loopback up, no IPv6 duplicate address detection); deleted at
        cleanup."""
        name = f"sl-{self.tag}-{role}"
        self.ip("netns", "add", name)
        self.testcase.addCleanup(subprocess.run, [IP, "netns", "del", name],
                                 capture_output=True, timeout=WAIT)
        self.ip("-n", name, "link", "set", "lo", "up")
        subprocess.run([IP, "netns", "exec", name, "sysctl", "-qw",
                        "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"],
                       capture_output=True, timeout=WAIT)
        return name

    def veth(self, ns1, name1, ns2, name2):
        """A veth pair, C{name1} in C{ns1} and C{name2} in C{ns2}, both up."""
        self.ip("link", "add", name1, "netns", ns1, "type", "veth", "peer", "name", name2,
                "netns", ns2)
        self.ip("-n", ns1, "link", "set", name1, "up")
        self.ip("-n", ns2, "link", "set", name2, "up")

    def bridge(self, ns, name, ports):
        """A bridge in C{ns} over C{ports} (a switch between them), up."""
        self.ip("-n", ns, "link", "add", name, "type", "bridge")
        for port in ports:
            self.ip("-n", ns, "link", "set", port, "master", name)
        self.ip("-n", ns, "link", "set", name, "up")

    def address(self, ns, device, *addresses):
        for address in addresses:
            extra = ["nodad"] if ":" in address else []
            self.ip("-n", ns, "addr", "add", address, "dev", device, *extra)

    def route(self, ns, *args):
        self.ip("-n", ns, *args)

    def spawn(self, ns, argv, cwd=None):
        """Start C{argv} in C{ns}; stopped by PID (SIGTERM, then SIGKILL) at cleanup."""
        process = Output()
        transport = reactor.spawnProcess(process, IP, [IP, "netns", "exec", ns, *argv],
                                         env=child_env(), path=cwd or ROOT)
        process.pid = transport.pid
        self.testcase.addCleanup(self._stop, process, transport)
        return process

    @defer.inlineCallbacks
    def _stop(self, process, transport):
        if not process.running:
            return
        transport.signalProcess("TERM")
        timer = reactor.callLater(WAIT, lambda: process.running and os.kill(process.pid,
                                                                            signal.SIGKILL))
        yield process.ended
        if timer.active():
            timer.cancel()

    @defer.inlineCallbacks
    def daemon(self, ns, config_text, interface, directory):
        """The daemon (``python -m senselink``) in C{ns} on C{interface}:9999, once started."""
        path = os.path.join(directory, "senselink.yml")
        state = os.path.join(directory, "state.json")
        with open(path, "w") as f:
            f.write(f"state_file: {state}\n" + config_text)
        process = self.spawn(ns, [sys.executable, "-m", "senselink", "-c", path,
                                  "--interface", interface, "-p", "9999"], cwd=directory)

        def started():
            if not process.running:
                raise FailTest(f"the daemon in {ns} exited:\n{process.text}")
            return b"SenseLink started" in process.output
        yield wait_until(started, f"the daemon in {ns} to start")
        return process

    @defer.inlineCallbacks
    def run(self, ns, argv):
        """Run C{argv} in C{ns} to its end (bounded); fires with C{(stdout, stderr, code)}."""
        d = getProcessOutputAndValue(IP, ["netns", "exec", ns, *argv], env=child_env(),
                                     path=ROOT)
        out, err, code = yield d.addTimeout(WAIT * 2, reactor)
        return out.decode(errors="replace"), err.decode(errors="replace"), code

    @defer.inlineCallbacks
    def client(self, ns, *args):
        """L{tests.lanclient} in C{ns}: fires with its JSON result."""
        out, err, code = yield self.run(ns, [sys.executable, "-m", "tests.lanclient", *args])
        if code != 0:
            raise FailTest(f"lanclient {' '.join(args)} failed ({code}):\n{err}")
        return json.loads(out)
