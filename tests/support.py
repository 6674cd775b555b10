"""Helpers shared by the tests: configs from text, real UDP/TCP Kasa clients on 127.0.0.1,
systemd's end of the notify socket."""

import json
import os
import shutil
import socket
import tempfile
import uuid

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from senselink import config as _config
from senselink.kasa import cipher, messages
from senselink.service import makeService

LOOPBACK = "127.0.0.1"
WAIT = 10  # seconds: upper bound for a network event on loopback, never a measured time


def config_from_text(text, name="test.yml"):
    """A validated Config from YAML text, written to a temporary file so errors carry a path."""
    fd, path = tempfile.mkstemp(suffix="-" + name)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return _config.load(path)
    finally:
        os.unlink(path)


def start_service(testcase, text, **kwargs):
    """Start the daemon on 127.0.0.1, ephemeral ports; stopped when the test ends."""
    kwargs.setdefault("port", 0)
    kwargs.setdefault("interface", LOOPBACK)
    service = makeService(config_from_text(text), **kwargs)
    service.privilegedStartService()
    service.startService()
    testcase.addCleanup(service.stopService)
    return service


def free_port():
    """A port number free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOPBACK, 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind((LOOPBACK, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


def has_ipv6_loopback():
    """Whether ::1 can be bound here (some containers have no IPv6)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def with_timeout(d, seconds=WAIT):
    """Cancel C{d} if it has not fired after C{seconds}: a bound, not a measurement."""
    call = reactor.callLater(seconds, d.cancel)

    def done(result):
        if call.active():
            call.cancel()
        return result
    return d.addBoth(done)


class UDPClient(protocol.DatagramProtocol):
    """Sends datagrams and collects decrypted JSON replies."""

    noisy = False

    def __init__(self):
        self.replies = []     # (decoded JSON, address)
        self._waiting = []    # (count, deferred)

    def datagramReceived(self, data, addr):
        self.replies.append((json.loads(cipher.decrypt(data)), addr))
        for entry in list(self._waiting):
            count, d = entry
            if len(self.replies) >= count:
                self._waiting.remove(entry)
                d.callback(self.replies[:count])

    def wait_for(self, count):
        """A Deferred firing with the first C{count} replies received."""
        d = defer.Deferred()
        if len(self.replies) >= count:
            d.callback(self.replies[:count])
        else:
            self._waiting.append((count, d))
        return with_timeout(d)

    def send(self, plaintext_or_bytes, port, host=LOOPBACK, encrypted=False):
        data = plaintext_or_bytes
        if isinstance(data, dict):
            data = json.dumps(data).encode()
        if not encrypted:
            data = cipher.encrypt(data)
        self.transport.write(data, (host, port))


def udp_client(testcase, interface=LOOPBACK, port=0):
    client = UDPClient()
    listening = reactor.listenUDP(port, client, interface=interface)
    testcase.addCleanup(listening.stopListening)
    return client


def sense(client, port, host=LOOPBACK):
    client.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (host, port))


class TCPClient(protocol.Protocol):
    """Sends length-prefixed requests and collects decrypted JSON frames."""

    def __init__(self):
        self.buffer = b""
        self.frames = []
        self._waiting = []
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.buffer += data
        while len(self.buffer) >= 4:
            length = cipher.frame_length(self.buffer[:4])
            if len(self.buffer) < 4 + length:
                break
            self.frames.append(json.loads(cipher.decrypt(self.buffer[4:4 + length])))
            self.buffer = self.buffer[4 + length:]
        for entry in list(self._waiting):
            count, d = entry
            if len(self.frames) >= count:
                self._waiting.remove(entry)
                d.callback(self.frames[:count])

    def connectionLost(self, reason):
        self.closed.callback(None)

    def wait_for(self, count):
        d = defer.Deferred()
        if len(self.frames) >= count:
            d.callback(self.frames[:count])
        else:
            self._waiting.append((count, d))
        return with_timeout(d)

    def request(self, payload):
        if isinstance(payload, dict):
            payload = json.dumps(payload).encode()
        self.transport.write(cipher.frame(cipher.encrypt(payload)))


def tcp_connect(testcase, port, host=LOOPBACK, source=None):
    """A L{TCPClient} connected to C{host}:C{port}, from the address C{source} if given
    (another loopback address such as 127.0.0.2 makes another peer)."""
    client = TCPClient()
    bind = None if source is None else (source, 0)
    d = connectProtocol(TCP4ClientEndpoint(reactor, host, port, bindAddress=bind), client)

    def connected(p):
        testcase.addCleanup(lambda: (p.transport.loseConnection(), p.closed)[1])
        return p
    return with_timeout(d.addCallback(connected))


@defer.inlineCallbacks
def wait_until(predicate, what=None, timeout=WAIT, step=0.01):
    """Let the reactor run until C{predicate()} is true; fires with its value.

    Fails after C{timeout} seconds: a bound for loopback events, never a
    measured time. C{what} names the condition in the failure.
    """
    from twisted.internet.task import deferLater
    from twisted.trial.unittest import FailTest
    deadline = reactor.seconds() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if reactor.seconds() > deadline:
            raise FailTest(f"timed out after {timeout} s waiting for {what or predicate}")
        yield deferLater(reactor, step, lambda: None)


class NotifySocket:
    """The service manager's end: a bound Unix datagram socket, read without blocking."""

    def __init__(self, testcase, abstract=False):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"senselink-test-{uuid.uuid4().hex}"
            self.socket.bind("\0" + name)
            self.env = "@" + name
        else:
            # A short path: Unix socket paths are limited to 107 bytes.
            directory = tempfile.mkdtemp(prefix="senselink-notify-")
            testcase.addCleanup(shutil.rmtree, directory)
            self.env = os.path.join(directory, "notify")
            self.socket.bind(self.env)
        self.socket.setblocking(False)
        testcase.addCleanup(self.socket.close)
        self.messages = []     # each a list of fields, in arrival order

    def read(self):
        """Everything that arrived since the last read, appended to L{messages}."""
        new = []
        while True:
            try:
                data = self.socket.recv(4096)
            except BlockingIOError:
                break
            new.append(data.decode("utf-8").split("\n"))
        self.messages.extend(new)
        return new

    def has(self, field, count=1):
        self.read()
        return sum(field in m for m in self.messages) >= count

    def events(self):
        """The messages without the watchdog pings and STATUS-only updates, as their first field."""
        self.read()
        return [m[0] for m in self.messages if m[0] not in ("WATCHDOG=1",)
                and not m[0].startswith("STATUS=")]
