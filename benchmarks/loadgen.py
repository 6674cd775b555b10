"""Load generator for the Kasa responder benchmark (a separate process, pinned to its own CPU).

Talks UDP to one server on 127.0.0.1 and checks every reply: decrypted, parsed
as JSON, an HS110 Sense reply whose ``system.get_sysinfo.mac`` is one of the
configured plugs and whose ``emeter.get_realtime.power`` is that plug's
configured power, and N distinct MACs per request.  Byte-identical replies are
verified once and remembered (identical bytes decrypt to identical JSON), so
servers that cache their replies are not held back by the checker.

Phases, all bounded in time, printed as one JSON object on stdout:

1. warm-up: closed loop for ``--warmup`` seconds, then the server's RSS;
2. closed loop: ``--inflight`` requests in flight (one UDP socket each), for
   ``--closed`` seconds: requests/s, and server CPU per request from
   ``/proc/PID/task/*/schedstat`` deltas;
3. open loop: one request every 1/``--rate`` seconds for ``--open`` seconds:
   latency from sending the request to receiving its last reply;
4. the server's RSS again (growth under sustained load).

Nothing here imports the project: the checker is independent of the code
under test.
"""

import argparse
import json
import os
import select
import socket
import sys
import time

try:  # the checker must keep up with 100k+ datagrams/s; orjson helps, json works
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - depends on the machine
    _loads = json.loads

SENSE_REQUEST = b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}}}'
RCVBUF = 4 * 1024 * 1024
REQUEST_TIMEOUT = 5.0   # seconds without completion before a closed-loop slot gives up
MAX_CACHE = 200_000     # verified distinct replies remembered


def encrypt(plaintext: bytes) -> bytes:
    """Reference Kasa encryption, byte by byte (used once per run: the request)."""
    key = 171
    out = bytearray()
    for byte in plaintext:
        key ^= byte
        out.append(key)
    return bytes(out)


def decrypt(ciphertext: bytes) -> bytes:
    """Kasa decryption: the ciphertext XORed with itself shifted by one byte (171 first)."""
    n = len(ciphertext)
    if not n:
        return b""
    shifted = b"\xab" + ciphertext[:-1]
    return (int.from_bytes(ciphertext, "big") ^ int.from_bytes(shifted, "big")).to_bytes(n, "big")


REQUEST = encrypt(SENSE_REQUEST)


class BadReply(ValueError):
    """A reply that is not a correct Sense reply for the configured plugs."""


class ReplyChecker:
    """Verifies reply datagrams against the expected plugs (C{{mac: watts}})."""

    def __init__(self, expected):
        self.expected = {mac.upper(): float(watts) for mac, watts in expected.items()}
        self.n = len(self.expected)
        self._cache = {}
        self.verified = 0

    def check(self, data: bytes) -> str:
        """The plug MAC this reply is for; raises L{BadReply}."""
        mac = self._cache.get(data)
        if mac is None:
            mac = self._verify(data)
            if len(self._cache) < MAX_CACHE:
                self._cache[data] = mac
        return mac

    def _verify(self, data):
        self.verified += 1
        try:
            reply = _loads(decrypt(data))
            realtime = reply["emeter"]["get_realtime"]
            sysinfo = reply["system"]["get_sysinfo"]
            mac = sysinfo["mac"]
            power = realtime["power"]
        except (ValueError, KeyError, TypeError) as e:
            raise BadReply(f"not a Sense reply: {e.__class__.__name__}: {e}") from None
        if not isinstance(mac, str) or mac.upper() not in self.expected:
            raise BadReply(f"unexpected mac {mac!r}")
        if isinstance(power, bool) or not isinstance(power, (int, float)):
            raise BadReply(f"power is not a number: {power!r}")
        want = self.expected[mac.upper()]
        if abs(power - want) > 1e-3 * max(1.0, abs(want)):
            raise BadReply(f"plug {mac}: power {power!r}, expected {want!r}")
        if sysinfo.get("type") != "IOT.SMARTPLUGSWITCH" and sysinfo.get("mic_type") != "IOT.SMARTPLUGSWITCH":
            raise BadReply(f"plug {mac}: type {sysinfo.get('type')!r}")
        return mac.upper()


class Request:
    """The replies collected so far for one request."""

    __slots__ = ("sent", "macs", "count")

    def __init__(self, sent):
        self.sent = sent
        self.macs = set()
        self.count = 0


def add_reply(checker, request, data):
    """Record one reply datagram; True once the request holds N distinct plugs.

    Raises L{BadReply} for a wrong reply or a plug answered twice.
    """
    mac = checker.check(data)
    if mac in request.macs:
        raise BadReply(f"plug {mac} answered twice for one request")
    request.macs.add(mac)
    request.count += 1
    return request.count == checker.n


def server_cpu_ns(pid) -> int:
    """Time on CPU of every thread of C{pid}, from schedstat (ns)."""
    total = 0
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that ended between listdir and open
    return total


def machine_busy_s() -> float:
    """CPU seconds all CPUs spent busy (not idle, not iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def udp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUFFORCE, RCVBUF)
    except (OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


class Stats:
    def __init__(self):
        self.completed = 0
        self.timeouts = 0
        self.bad = 0
        self.first_error = None

    def error(self, e):
        self.bad += 1
        if self.first_error is None:
            self.first_error = str(e)


def closed_loop(checker, addr, inflight, duration, pid=None, stats=None):
    """Keep C{inflight} requests in flight for C{duration} seconds.

    Returns a dict with requests/s and, with C{pid}, server CPU ms per request.
    """
    stats = stats or Stats()
    poller = select.epoll()
    slots = {}

    def start(sock):
        slots[sock.fileno()] = (sock, Request(time.monotonic()))
        sock.sendto(REQUEST, addr)

    def replace(fd):
        sock, _ = slots.pop(fd)
        poller.unregister(fd)
        sock.close()
        new = udp_socket()
        poller.register(new.fileno(), select.EPOLLIN)
        start(new)

    for _ in range(inflight):
        sock = udp_socket()
        poller.register(sock.fileno(), select.EPOLLIN)
        start(sock)

    cpu0 = server_cpu_ns(pid) if pid else None
    me0 = time.process_time()
    busy0 = machine_busy_s()
    t0 = time.monotonic()
    deadline = t0 + duration
    next_sweep = t0 + 0.1
    completed = 0
    replies = 0
    now = t0
    while now < deadline:
        for fd, _ in poller.poll(0.05):
            sock, request = slots[fd]
            recv = sock.recv
            while True:
                try:
                    data = recv(65536)
                except BlockingIOError:
                    break
                try:
                    done = add_reply(checker, request, data)
                except BadReply as e:
                    stats.error(e)
                    replace(fd)      # drop this request: later replies go nowhere
                    break
                replies += 1
                if done:
                    completed += 1
                    request = Request(time.monotonic())
                    slots[fd] = (sock, request)
                    sock.sendto(REQUEST, addr)
        now = time.monotonic()
        if now >= next_sweep:
            next_sweep = now + 0.1
            for fd, (sock, request) in list(slots.items()):
                if now - request.sent > REQUEST_TIMEOUT:
                    stats.timeouts += 1
                    replace(fd)
    elapsed = time.monotonic() - t0
    cpu1 = server_cpu_ns(pid) if pid else None
    me1 = time.process_time()
    busy1 = machine_busy_s()
    for sock, _ in slots.values():
        poller.unregister(sock.fileno())
        sock.close()
    poller.close()
    stats.completed += completed
    result = {"requests": completed, "replies": replies, "seconds": elapsed,
              "requests_per_s": completed / elapsed if elapsed else 0.0,
              "client_cpu_fraction": (me1 - me0) / elapsed if elapsed else 0.0}
    if pid:
        # Per N correct replies received rather than per completed request, so
        # requests still in flight at the end (or given up) count for the
        # work the server did on them.
        result["server_cpu_ms_per_request"] = ((cpu1 - cpu0) / 1e6 / (replies / checker.n)
                                               if replies else None)
        result["server_cpu_fraction"] = (cpu1 - cpu0) / 1e9 / elapsed if elapsed else 0.0
        # CPU time the machine spent on anything but the server and this process
        # (other work on a shared machine, kernel threads): high values make
        # requests/s and latency unreliable; CPU per request holds up better.
        other = (busy1 - busy0) - (cpu1 - cpu0) / 1e9 - (me1 - me0)
        result["other_cpu_fraction"] = max(0.0, other / elapsed) if elapsed else 0.0
    return result


def one_request(checker, addr, timeout, sock=None):
    """Send one request and wait for all its replies; the latency in seconds or None."""
    own = sock is None
    if own:
        sock = udp_socket()
    try:
        request = Request(time.perf_counter())
        sock.sendto(REQUEST, addr)
        deadline = request.sent + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                return None
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                if add_reply(checker, request, data):
                    return time.perf_counter() - request.sent
    finally:
        if own:
            sock.close()


def open_loop(checker, addr, rate, duration, stats=None):
    """One request every 1/C{rate} s for C{duration} s; latencies to the last reply (ms)."""
    stats = stats or Stats()
    period = 1.0 / rate
    latencies = []
    t0 = time.perf_counter()
    k = 0
    while True:
        due = t0 + k * period
        if due - t0 >= duration:
            break
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        try:
            # a fresh socket each time: a late reply of an earlier request never counts
            latency = one_request(checker, addr, timeout=period * 0.9)
        except BadReply as e:
            stats.error(e)
            latency = None
        if latency is None:
            stats.timeouts += 1
        else:
            latencies.append(latency * 1000.0)
            stats.completed += 1
        k += 1
    return latencies


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True, help="server process id (CPU, RSS)")
    parser.add_argument("--plugs", required=True, help="JSON file: {mac: watts}")
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin this process to")
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--closed", type=float, default=5.0)
    parser.add_argument("--open", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})
    with open(args.plugs) as f:
        checker = ReplyChecker(json.load(f))
    addr = ("127.0.0.1", args.port)
    stats = Stats()
    closed_loop(checker, addr, args.inflight, args.warmup, stats=stats)
    rss_warm = rss_kib(args.pid)
    closed = closed_loop(checker, addr, args.inflight, args.closed, pid=args.pid, stats=stats)
    latencies = open_loop(checker, addr, args.rate, args.open, stats=stats)
    rss_after = rss_kib(args.pid)
    result = dict(closed)
    result.update({
        "latencies_ms": latencies,
        "p50_ms": percentile(latencies, 50) if latencies else None,
        "p99_ms": percentile(latencies, 99) if latencies else None,
        "rss_kib_warm": rss_warm,
        "rss_kib_after": rss_after,
        "completed_total": stats.completed,
        "timeouts": stats.timeouts,
        "bad_replies": stats.bad,
        "first_error": stats.first_error,
        "distinct_replies_verified": checker.verified,
    })
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
