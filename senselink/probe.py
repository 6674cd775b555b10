"""The probe: play the Sense monitor and list every plug that answers.

``python -m senselink probe`` sends the exact request a Sense monitor
broadcasts (to 255.255.255.255:9999 by default, or to one host), collects
the replies until the timeout, and prints a table of the plugs (alias, MAC,
watts, model, from which address) with warnings for what would confuse
Sense. The exit code is 0 when at least one plug answered, 1 otherwise.
It is also the Docker image's health check (against 127.0.0.1).
"""

import ipaddress
import json
import sys
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.protocol import DatagramProtocol
from twisted.python import usage

from senselink.config import MAX_REPORTED_PLUGS
from senselink.kasa import cipher, messages
from senselink.keypath import MISSING, lookup

BROADCAST = "255.255.255.255"
DEFAULT_PORT = 9999
DEFAULT_TIMEOUT = 3.0
SENSE_MODEL = messages.HS110_MODEL   # the model Sense accepts


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
        return f"{self.host}:{self.port}"


@dataclass
class ProbeResult:
    target: str
    port: int
    timeout: float
    answers: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)   # (address, reason)

    def warnings(self):
        """What would confuse a Sense monitor, one sentence each."""
        out = []
        by_mac = {}
        for answer in self.answers:
            by_mac.setdefault(answer.mac, []).append(answer)
        for mac, answers in by_mac.items():
            if len(answers) > 1:
                who = ", ".join(f"{a.alias!r} from {a.address}" for a in answers)
                out.append(f"duplicate MAC {mac}: {len(answers)} answers ({who}); "
                           f"Sense tells plugs apart by MAC, give each plug its own")
        for answer in self.answers:
            if answer.model != SENSE_MODEL:
                out.append(f"{answer.alias!r} ({answer.mac}) from {answer.address} reports model "
                           f"{answer.model!r}; Sense only accepts {SENSE_MODEL!r}")
        if len(self.answers) > MAX_REPORTED_PLUGS:
            out.append(f"{len(self.answers)} plugs answered; Sense shows about "
                       f"{MAX_REPORTED_PLUGS} at most")
        for address, reason in self.unreadable:
            out.append(f"unreadable reply from {address}: {reason}")
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

    def __init__(self, result, count):
        self.result = result
        self.count = count
        self.full = defer.Deferred()

    def datagramReceived(self, data, addr):
        host, port = addr[0], addr[1]
        try:
            self.result.answers.append(parse_answer(data, host, port))
        except ValueError as e:
            self.result.unreadable.append((f"{host}:{port}", str(e)))
        if self.count and len(self.result.answers) >= self.count and not self.full.called:
            self.full.callback(None)


@defer.inlineCallbacks
def probe(reactor, target=BROADCAST, port=DEFAULT_PORT, timeout=DEFAULT_TIMEOUT, count=None,
          clock=None):
    """Send the Sense request to C{target:port}; fires with a L{ProbeResult}.

    Collects replies for C{timeout} seconds (measured on C{clock}, default
    the reactor), or until C{count} plugs answered. Fails with OSError
    when the request cannot be sent.
    """
    clock = clock or reactor
    address = target
    try:
        loopback = ipaddress.ip_address(target).is_loopback
    except ValueError:
        address = yield reactor.resolve(target)
        loopback = ipaddress.ip_address(address).is_loopback
    result = ProbeResult(target, port, timeout)
    collector = _Collector(result, count)
    listening = reactor.listenUDP(0, collector, interface="127.0.0.1" if loopback else "")
    try:
        if not loopback:
            listening.setBroadcastAllowed(True)
        collector.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (address, port))
        waited = defer.Deferred()
        timer = clock.callLater(timeout, waited.callback, None)
        collector.full.addCallback(lambda _: waited.called or waited.callback(None))
        yield waited
        if timer.active():
            timer.cancel()
    finally:
        yield listening.stopListening()
    return result


def table(answers) -> str:
    rows = [("ALIAS", "MAC", "WATTS", "MODEL", "FROM")]
    for a in answers:
        rows.append((a.alias, a.mac, f"{a.watts:.1f}", a.model, a.address))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def report(result: ProbeResult, out) -> int:
    """Print the table and warnings; the exit code (0 when at least one plug answered)."""
    where = f"{result.target}:{result.port}"
    if result.answers:
        print(table(result.answers), file=out)
        print(f"\n{len(result.answers)} plug(s) answered the Sense request to {where}", file=out)
    else:
        print(f"No plug answered the Sense request to {where} within {result.timeout:g} s.",
              file=out)
        print("Check that SenseLink runs, is not in quiet mode (SENSE_RESPONSE=false / -q), "
              "has no 'target:' sending replies elsewhere, that UDP port "
              f"{result.port} is open, and that Docker uses host networking.", file=out)
    for warning in result.warnings():
        print(f"warning: {warning}", file=out)
    return 0 if result.answers else 1


def _positive(value):
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be > 0, got {value}")
    return number


def _port(value):
    number = int(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"port must be 1..65535, got {value}")
    return number


class Options(usage.Options):
    synopsis = "[--target HOST] [--port P] [--timeout S] [--count N]"
    longdesc = ("Play the Sense monitor: send its request and list every plug that answers. "
                "Exit code 0 when at least one plug answered.")
    optParameters = [
        ["target", "t", BROADCAST, "Host to ask (default: broadcast on the LAN)"],
        ["port", "p", DEFAULT_PORT, "UDP port plugs answer on", _port],
        ["timeout", "w", DEFAULT_TIMEOUT, "Seconds to collect replies", _positive],
        ["count", "n", None, "Stop as soon as this many plugs answered", int],
    ]


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

    def done(result):
        codes.append(report(result, out))

    def failed(failure):
        print(f"senselink probe: cannot ask {options['target']}:{options['port']}: "
              f"{failure.getErrorMessage()}", file=err)
        codes.append(1)

    def go():
        d = probe(reactor, options["target"], options["port"], options["timeout"],
                  options["count"])
        d.addCallbacks(done, failed)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
    return codes[0] if codes else 1
