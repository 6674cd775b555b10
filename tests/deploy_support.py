"""Test helpers for deployment tests: a connected test source kind, log capture,
Sense requests over real loopback sockets, and daemons run as subprocesses.
"""

import json
import os
import re
import shutil
import sys

from twisted.application.internet import ClientService
from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.logger import formatEvent, globalLogPublisher
from twisted.protocols.basic import LineReceiver

from senselink.config import MODEL_FIELDS, Field, SourceKind, integer
from senselink.kasa import cipher, messages
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.sources import default_kinds
from senselink.sources.base import SourceService

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WAIT = 20  # seconds: bound for waiting on real network and process events


def with_timeout(d, seconds=WAIT):
    return d.addTimeout(seconds, reactor)


# ---------------------------------------------------------------- a connected source


class LineServer(protocol.Factory):
    """A loopback TCP server a 'line' source connects to; the test sends it lines."""

    def __init__(self):
        self.connections = []     # every protocol ever connected
        self._waiting = []

    def buildProtocol(self, addr):
        p = _ServerSide()
        p.factory = self
        return p

    @property
    def open(self):
        return [p for p in self.connections if p.transport is not None and p.open]

    def next_connection(self):
        d = defer.Deferred()
        self._waiting.append(d)
        return with_timeout(d)


class _ServerSide(LineReceiver):
    open = False

    def connectionMade(self):
        self.open = True
        self.lost = defer.Deferred()
        self.factory.connections.append(self)
        waiting, self.factory._waiting = self.factory._waiting, []
        for d in waiting:
            d.callback(self)

    def connectionLost(self, reason):
        self.open = False
        self.lost.callback(None)


class _ClientSide(LineReceiver):
    def lineReceived(self, line):
        self.factory.source.received(line.decode("utf-8"))


class LineSource(SourceService):
    """Reads 'plug_id watts' lines from a TCP server and feeds its plugs."""

    kind = "line"

    def __init__(self, source, plugs, clock):
        super().__init__(clock)
        self.label = f"127.0.0.1:{source.options['port']}"
        self.by_id = {}
        for pc in source.plugs:
            feed = Feed(plugs[pc.id], PowerModel.from_settings(pc.settings, pc.max_plug_watts), clock)
            self.by_id[pc.id] = feed
            self.feeds.append(feed)
        self._lines = []
        factory = protocol.Factory.forProtocol(_ClientSide)
        factory.source = self
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", source.options["port"])
        ClientService(endpoint, factory).setServiceParent(self)

    def received(self, line):
        plug_id, value = line.split()
        try:
            self.by_id[plug_id].power(value)
        except UnreadableValue:
            pass
        self.touch()
        waiting, self._lines = self._lines, []
        for d in waiting:
            d.callback(line)

    def next_line(self):
        d = defer.Deferred()
        self._lines.append(d)
        return with_timeout(d)


class LineKind(SourceKind):
    name = "line"
    source_fields = {"port": Field(integer(minimum=1, maximum=65535), required=True)}
    plug_fields = MODEL_FIELDS
    made = []   # every service made, in order

    def initial(self, plug):
        return 0.0, None

    def make_service(self, source, plugs, clock):
        service = LineSource(source, plugs, clock)
        self.made.append(service)
        return service


def kinds_with_line():
    kind = LineKind()
    kind.made = []
    return default_kinds({"line": kind})


# ---------------------------------------------------------------- logs


class LogCapture:
    """Collects formatted log lines; L{wait_for} fires when a line matches."""

    def __init__(self, testcase):
        self.lines = []
        self.events = []
        self._waiting = []
        globalLogPublisher.addObserver(self)
        testcase.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        text = formatEvent(event)
        self.events.append(event)
        self.lines.append(text)
        for pattern, d in list(self._waiting):
            if re.search(pattern, text):
                self._waiting.remove((pattern, d))
                d.callback(text)

    def wait_for(self, pattern):
        for text in self.lines:
            if re.search(pattern, text):
                return defer.succeed(text)
        d = defer.Deferred()
        self._waiting.append((pattern, d))
        return with_timeout(d)

    def text(self):
        return "\n".join(self.lines)


# ---------------------------------------------------------------- Sense requests


class _Asker(protocol.DatagramProtocol):
    def __init__(self, expected):
        self.expected = expected
        self.replies = []
        self.done = defer.Deferred()

    def datagramReceived(self, data, addr):
        self.replies.append(json.loads(cipher.decrypt(data)))
        if len(self.replies) >= self.expected and not self.done.called:
            self.done.callback(self.replies)


@defer.inlineCallbacks
def ask_udp(port, expected, host="127.0.0.1"):
    """Send the Sense request to C{host:port}; the first C{expected} decoded replies."""
    asker = _Asker(expected)
    listening = reactor.listenUDP(0, asker, interface="127.0.0.1")
    try:
        asker.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (host, port))
        replies = yield with_timeout(asker.done)
    finally:
        yield listening.stopListening()
    return replies


def by_alias(replies):
    """{alias: watts} of decoded Sense replies."""
    return {r["system"]["get_sysinfo"]["alias"]: r["emeter"]["get_realtime"]["power"]
            for r in replies}


# ---------------------------------------------------------------- processes


def twistd_executable():
    """The twistd script: the running Python's, else the first on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), "twistd")
    found = candidate if os.path.exists(candidate) else shutil.which("twistd")
    if found is None:
        raise AssertionError(f"no twistd script beside {sys.executable} or on PATH")
    return found


def child_env(**extra):
    """Environment for a child daemon: this worktree first on the path, no stray settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("CONFIG_LOCATION", "LOGLEVEL", "SENSE_RESPONSE")}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


class DaemonProcess(protocol.ProcessProtocol):
    """A child process whose output is collected; L{wait_for} fires on matching output."""

    def __init__(self):
        self.output = ""
        self.ended = defer.Deferred()
        self._waiting = []
        self.pid = None

    def connectionMade(self):
        self.pid = self.transport.pid

    def outReceived(self, data):
        self._got(data)

    def errReceived(self, data):
        self._got(data)

    def _got(self, data):
        self.output += data.decode("utf-8", "replace")
        for pattern, d in list(self._waiting):
            match = re.search(pattern, self.output)
            if match:
                self._waiting.remove((pattern, d))
                d.callback(match)

    def wait_for(self, pattern):
        match = re.search(pattern, self.output)
        if match:
            return defer.succeed(match)
        d = defer.Deferred()
        self._waiting.append((pattern, d))
        return with_timeout(d)

    def processEnded(self, reason):
        for pattern, d in self._waiting:
            d.errback(AssertionError(f"process ended before {pattern!r} appeared; "
                                     f"output:\n{self.output}"))
        self._waiting = []
        self.reason = reason.value
        self.ended.callback(getattr(reason.value, "exitCode", None))

    def stop(self, signal="TERM"):
        """Signal the process we started (by its PID) unless it has ended."""
        if not self.ended.called and self.transport.pid is not None:
            self.transport.signalProcess(signal)
        return with_timeout(self.ended)


def spawn(argv, env, path=ROOT):
    proc = DaemonProcess()
    reactor.spawnProcess(proc, argv[0], argv, env=env, path=path)
    return proc


PORT_LINES = r"Answering Kasa requests on UDP [0-9.]+:(\d+)"


def stopped_cleanly(proc):
    """Whether a daemon we sent SIGTERM shut down in order.

    twistd (Twisted 26) ends the process with the signal that stopped
    the reactor once it has shut down, so the exit status is "killed by
    SIGTERM" rather than 0; `python -m senselink` exits with 0.
    """
    reason = proc.reason
    by_signal = getattr(reason, "signal", None) == 15 and getattr(reason, "exitCode", 0) is None
    return ((by_signal or getattr(reason, "exitCode", None) == 0)
            and "Main loop terminated." in proc.output)


# ---------------------------------------------------------------- Dockerfiles


def dockerfile_instructions(path=os.path.join(ROOT, "Dockerfile")):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, pending = [], ""
    with open(path) as f:
        for line in f:
            stripped = line.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            text = pending + stripped
            pending = ""
            word, _, rest = text.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out
