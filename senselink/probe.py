"""The probe: play the Sense monitor and list every plug that answers.

``python -m senselink probe`` sends the exact request a Sense monitor
broadcasts (to 255.255.255.255:9999 by default, or to one host: an IPv4 or
IPv6 address, C{[::1]}, C{fe80::1%eth0}, or a name), collects the replies
until the timeout, and prints a table of the plugs (alias, MAC, watts,
model, from which address) with warnings for what would confuse Sense.
The exit code is 0 when at least one plug answered, 1 otherwise. It is
also the Docker image's health check (against 127.0.0.1).

A daemon with many plugs sends all its replies at once, faster than they
are read: the probe's receive buffer holds L{RECEIVE_BUFFER} bytes (beyond
the system's limit when allowed), and replies the kernel still dropped are
counted and reported. Each datagram is read whole, up to the largest UDP
datagram (L{MAX_DATAGRAM}). Ctrl-C (SIGINT) ends the collection early: the
table so far is printed and the exit code is L{INTERRUPTED} (130).
"""

import ipaddress
import json
import math
import signal
import socket
import struct
import sys
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.python import usage

from senselink.config import MAX_REPORTED_PLUGS
from senselink.excerpt import excerpt, shown_name
from senselink.kasa import cipher, messages
from senselink.keypath import MISSING, lookup

BROADCAST = "255.255.255.255"
DEFAULT_PORT = 9999
DEFAULT_TIMEOUT = 3.0
MAX_DATAGRAM = 65535     # bytes: the largest UDP datagram, read whole
INTERRUPTED = 130        # exit code after Ctrl-C (128 + SIGINT), as shells report it
SENSE_MODEL = messages.HS110_MODEL   # the model Sense accepts

# Bytes asked for the receive buffer. Linux doubles the figure for its
# bookkeeping and charges ~2.3 KB per ~700-byte reply: 4 MiB holds about
# 3600 replies of a daemon that sends them all at once.
RECEIVE_BUFFER = 4 * 1024 * 1024
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)   # Linux; past net.core.rmem_max
SO_MEMINFO = 55          # Linux: the socket's memory counters, the last one its drops
MEMINFO_FORMAT = "9I"


def parse_target(text: str):
    """C{(host, family)} of a probe target: C{[::1]} and C{fe80::1%eth0} are IPv6,
    C{None} family for a host name. ValueError for an empty or malformed address."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f"no host in {text!r}")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if ":" in host or "%" in host:
            raise ValueError(f"not an IP address: {text!r}") from None
        return host, None
    return host, socket.AF_INET6 if address.version == 6 else socket.AF_INET


def _address_of(host):
    return ipaddress.ip_address(host.split("%", 1)[0])


def receive_socket(family, interface, size=RECEIVE_BUFFER):
    """A bound, non-blocking UDP socket whose receive buffer holds C{size} bytes if allowed."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < 2 * size:
            try:     # capped by net.core.rmem_max: root (CAP_NET_ADMIN) may go past it
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
            except OSError:
                pass
        if family == socket.AF_INET:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((interface, 0))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def dropped(sock):
    """Datagrams the kernel dropped for C{sock} (a full receive buffer), or None if unknown."""
    try:
        info = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, struct.calcsize(MEMINFO_FORMAT))
        return struct.unpack(MEMINFO_FORMAT, info)[-1]
    except (OSError, struct.error):
        return None


@dataclass
class Answer:
    """One plug's reply."""
    alias: str
    mac: str
    watts: float
    model: str
    host: str
    port: int

    @property
    def address(self):
        return join_host_port(self.host, self.port)


def join_host_port(host, port):
    """C{host:port}, with brackets around an IPv6 host."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class ProbeResult:
    target: str
    port: int
    timeout: float
    answers: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)   # (address, reason)
    dropped: int = 0            # replies the kernel dropped: the receive buffer was full
    buffer: int = 0             # bytes the receive buffer held
    interrupted: bool = False   # ended early (Ctrl-C) rather than by timeout or count

    def warnings(self):
        """What would confuse a Sense monitor, one sentence each."""
        out = []
        by_mac = {}
        for answer in self.answers:
            by_mac.setdefault(answer.mac, []).append(answer)
        for mac, answers in by_mac.items():
            mac = shown_name(mac)
            if len(answers) > 1:
                who = ", ".join(f"{excerpt(a.alias)} from {a.address}" for a in answers)
                out.append(f"duplicate MAC {mac}: {len(answers)} answers ({who}); "
                           f"Sense tells plugs apart by MAC, give each plug its own")
        for answer in self.answers:
            if answer.model != SENSE_MODEL:
                out.append(f"{excerpt(answer.alias)} ({shown_name(answer.mac)}) from "
                           f"{answer.address} reports model {excerpt(answer.model)}; Sense only "
                           f"accepts {SENSE_MODEL!r}")
        if len(self.answers) > MAX_REPORTED_PLUGS:
            out.append(f"{len(self.answers)} plugs answered; Sense shows about "
                       f"{MAX_REPORTED_PLUGS} at most")
        for address, reason in self.unreadable:
            out.append(f"unreadable reply from {address}: {reason}")
        if self.dropped:
            out.append(f"{self.dropped} more replies arrived than the receive buffer "
                       f"({self.buffer // 1024} KiB) could hold and were not counted; run the "
                       f"probe as root or raise net.core.rmem_max")
        return out


def parse_answer(data: bytes, host: str, port: int) -> Answer:
    """Read one encrypted reply; ValueError with a reason when it is not a Sense reply."""
    try:
        reply = json.loads(cipher.decrypt(data))
    except (ValueError, RecursionError):
        raise ValueError(f"not Kasa JSON ({len(data)} bytes)") from None
    sysinfo = lookup(reply, "system/get_sysinfo")
    realtime = lookup(reply, "emeter/get_realtime")
    if not isinstance(sysinfo, dict) or not isinstance(realtime, dict):
        raise ValueError("no system.get_sysinfo and emeter.get_realtime in the reply")
    watts = lookup(realtime, "power")
    if watts is MISSING:   # newer firmware: milliwatts
        watts = lookup(realtime, "power_mw", 0) / 1000
    if isinstance(watts, bool) or not isinstance(watts, (int, float)):
        raise ValueError(f"power is not a number: {watts!r}")
    return Answer(alias=str(sysinfo.get("alias", "")), mac=str(sysinfo.get("mac", "")).upper(),
                  watts=float(watts), model=str(sysinfo.get("model", "")), host=host, port=port)


class _Collector(DatagramProtocol):
    noisy = False

    def __init__(self, result, count, zone=None):
        self.result = result
        self.count = count
        self.zone = zone      # the target's IPv6 zone, shown with link-local senders
        self.full = defer.Deferred()

    def datagramReceived(self, data, addr):
        host, port = addr[0], addr[1]
        if self.zone and ":" in host and "%" not in host and _address_of(host).is_link_local:
            host = f"{host}%{self.zone}"
        try:
            self.result.answers.append(parse_answer(data, host, port))
        except ValueError as e:
            self.result.unreadable.append((join_host_port(host, port), str(e)))
        if self.count and len(self.result.answers) >= self.count and not self.full.called:
            self.full.callback(None)


@defer.inlineCallbacks
def probe(reactor, target=BROADCAST, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT, count=None,
          clock=None, receive_buffer=RECEIVE_BUFFER, interrupt=None):
    """Send the Sense request to C{target:port}; fires with a L{ProbeResult}.

    C{target}: an IPv4 or IPv6 address (in brackets or not, link-local with
    its zone), or a host name (resolved to IPv4). Collects replies for
    C{timeout} seconds (measured on C{clock}, default the reactor), or until
    C{count} plugs answered, or until C{interrupt} (a Deferred) fires: then
    the result holds what arrived so far and says it was interrupted. Fails
    with OSError (or ValueError for a bad target) when the request cannot be
    sent.
    """
    clock = clock or reactor
    address, family = parse_target(target)
    if family is None:
        address = yield reactor.resolve(address)
        family = socket.AF_INET
    ip = _address_of(address)
    zone = address.split("%", 1)[1] if "%" in address else None
    if family == socket.AF_INET6:
        interface = "::1" if ip.is_loopback else "::"
    else:
        interface = "127.0.0.1" if ip.is_loopback else ""
    result = ProbeResult(target, port, timeout)
    collector = _Collector(result, count, zone)
    sock = receive_socket(family, interface, receive_buffer)
    try:
        listening = reactor.adoptDatagramPort(sock.fileno(), family, collector,
                                              maxPacketSize=MAX_DATAGRAM)
    finally:
        sock.close()       # the port holds its own copy of the descriptor
    try:
        result.buffer = listening.getHandle().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        collector.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (address, port))
        waited = defer.Deferred()
        timer = clock.callLater(timeout, waited.callback, None)
        collector.full.addCallback(lambda _: waited.called or waited.callback(None))
        if interrupt is not None:
            interrupt.addCallback(_interrupted, result, waited)
        yield waited
        if timer.active():
            timer.cancel()
        if result.interrupted:
            listening.doRead()    # replies that arrived before Ctrl-C are in the table
        result.dropped = dropped(listening.getHandle()) or 0
    finally:
        # No yield here: a generator closed while waiting must not wait again.
        stopping = listening.stopListening()
    yield stopping
    return result


def _interrupted(_, result, waited):
    if not waited.called:
        result.interrupted = True
        waited.callback(None)


def table(answers) -> str:
    rows = [("ALIAS", "MAC", "WATTS", "MODEL", "FROM")]
    for a in answers:
        rows.append((shown_name(a.alias), shown_name(a.mac), f"{a.watts:.1f}",
                     shown_name(a.model), a.address))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def report(result: ProbeResult, out) -> int:
    """Print the table and warnings; the exit code (0 when at least one plug answered,
    1 when none did, L{INTERRUPTED} after Ctrl-C)."""
    host, _ = parse_target(result.target)
    where = join_host_port(host, result.port)
    if result.answers:
        print(table(result.answers), file=out)
        print(f"\n{len(result.answers)} plug(s) answered the Sense request to {where}"
              f"{' before the probe was interrupted' if result.interrupted else ''}", file=out)
    elif result.interrupted:
        print(f"No plug answered the Sense request to {where} before the probe was "
              f"interrupted.", file=out)
    else:
        print(f"No plug answered the Sense request to {where} within {result.timeout:g} s.",
              file=out)
        print("Check that SenseLink runs, is not in quiet mode (SENSE_RESPONSE=false / -q), "
              "has no 'target:' sending replies elsewhere, that UDP port "
              f"{result.port} is open, and that Docker uses host networking.", file=out)
    for warning in result.warnings():
        print(f"warning: {warning}", file=out)
    if result.interrupted:
        return INTERRUPTED
    return 0 if result.answers else 1


@dataclass(frozen=True)
class Seconds:
    """An option's number of seconds, from C{low} to C{high}: the coerce function of
    L{Options} (its range shown in --help), refusing anything else with a usage error
    that names the range (C{inf}, C{nan}, negative and absurd numbers included)."""
    option: str
    low: float
    high: float

    @property
    def coerceDoc(self):
        return f"From {self.low:g} to {self.high:g} seconds."

    def __call__(self, text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not self.low <= value <= self.high:
            raise usage.UsageError(f"{self.option} must be a number of seconds from "
                                   f"{self.low:g} to {self.high:g}, got {shown_name(text)}")
        return value


def _port(value):
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"port must be 1..65535, got {value}")
    return number


class Options(usage.Options):
    synopsis = "[--target HOST] [--port P] [--timeout S] [--count N]"
    longdesc = ("Play the Sense monitor: send its request and list every plug that answers. "
                "Exit code 0 when at least one plug answered; Ctrl-C prints the table so far "
                f"(exit code {INTERRUPTED}).")
    optParameters = [
        ["target", "t", BROADCAST, "Host to ask: IPv4, IPv6 ([::1], fe80::1%eth0) or a name "
                                   "(default: broadcast on the LAN)"],
        ["port", "p", DEFAULT_PORT, "UDP port plugs answer on", _port],
        ["timeout", "w", DEFAULT_TIMEOUT, "Seconds to collect replies",
         Seconds("--timeout", 0.01, 3600.0)],
        ["count", "n", None, "Stop as soon as this many plugs answered", int],
    ]

    def postOptions(self):
        try:
            parse_target(self["target"])
        except ValueError as e:
            raise usage.UsageError(f"--target: {e}") from None


def main(argv, out=None, err=None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    options = Options()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        print(f"senselink probe: {e}", file=err)
        print(f"usage: python -m senselink probe {Options.synopsis}", file=err)
        return 2
    from twisted.internet import reactor
    codes = []
    interrupt = defer.Deferred()

    def done(result):
        codes.append(report(result, out))

    def failed(failure):
        where = join_host_port(parse_target(options["target"])[0], options["port"])
        print(f"senselink probe: cannot ask {where}: {failure.getErrorMessage()}", file=err)
        codes.append(1)

    def go():
        d = probe(reactor, options["target"], options["port"], options["timeout"],
                  options["count"], interrupt=interrupt)
        d.addCallbacks(done, failed)
        d.addBoth(lambda _: reactor.stop())

    def on_sigint(signum, frame):
        # The first Ctrl-C ends the collection (the table so far is printed), a
        # second one stops at once. Twisted leaves a SIGINT handler set before run().
        if interrupt.called:
            reactor.callFromThread(reactor.stop)
        else:
            reactor.callFromThread(lambda: interrupt.called or interrupt.callback(None))

    reactor.callWhenRunning(go)
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        reactor.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupt.called and not codes:
        codes.append(INTERRUPTED)
    return codes[0] if codes else 1
