"""Cost of answering from the address asked: the UDP read and reply paths side by side.

    python3 benchmarks/multihome.py [--plugs 20,200] [--requests 400] [--rounds 31]

In one process, no reactor running: a client socket sends the Sense
request to our UDP port on 0.0.0.0, the port's C{doRead} is called (it
reads the request and the protocol sends N replies to the client), and
the client's replies are drained outside the timed part. Three ways, in
interleaved rounds:

- ``plain``: Twisted's C{udp.Port} on 0.0.0.0 (how the daemon listened
  before: recvfrom, sendto; replies from whatever address routing picks);
- ``arrival``: L{senselink.udpport.ArrivalPort} (recvmsg with packet
  information, a copy check, sendmsg with C{IP_PKTINFO} per reply), the
  request sent to 127.0.0.1 (unicast);
- ``arrival-other``: the same, the request sent to 127.0.0.2 (a secondary
  address: the replies must carry it);
- ``arrival-always``: as ``arrival``, with packet information on every
  reply even where the kernel's own choice is right (what
  L{senselink.udpport.ReplySources} saves).

Prints the median time per request (process CPU time over the timed calls)
and the median of the per-round ratios against ``plain`` (paired rounds
hold up better than medians alone on a shared machine).
"""

import argparse
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twisted.internet import reactor, udp  # noqa: E402

from senselink.config import load_text  # noqa: E402
from senselink.kasa import messages  # noqa: E402
from senselink.plugbuilder import build_plugs  # noqa: E402
from senselink.replies import SenseReplyCache  # noqa: E402
from senselink.responder import Responder  # noqa: E402
from senselink.sources import default_kinds  # noqa: E402
from senselink.udp import KasaDatagramProtocol  # noqa: E402
from senselink.udpport import ArrivalPort, reply_ancillary  # noqa: E402

WAYS = ["plain", "arrival", "arrival-other", "arrival-always"]


class Always:
    """ReplySources that never trusts the kernel's choice: packet information every time."""

    def ancillary(self, sockaddr, info):
        return reply_ancillary(info)


def config(n):
    lines = ["rate_limit: false", "sources:", "  - static:", "      plugs:"]
    for i in range(n):
        lines.append(f"        - p{i}: {{mac: '53:75:31:BE:{i // 256:02X}:{i % 256:02X}', "
                     f"max_watts: {10 + i}}}")
    return "\n".join(lines) + "\n"


class Setup:
    """A protocol on a port of one kind, and a client socket."""

    def __init__(self, n, way):
        cfg = load_text(config(n), "bench.yml")
        plugs = build_plugs(cfg, reactor, default_kinds())
        self.responder = Responder(SenseReplyCache(plugs))
        self.protocol = KasaDatagramProtocol(self.responder, clock=reactor)
        kind = udp.Port if way == "plain" else ArrivalPort
        self.port = kind(0, self.protocol, "0.0.0.0", reactor=reactor)
        self.port.startListening()
        self.port.stopReading()         # this benchmark calls doRead itself
        if way == "arrival-always":
            self.port.sources = Always()
        self.client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.client.bind(("127.0.0.1", 0))
        self.client.setblocking(False)
        host = "127.0.0.2" if way == "arrival-other" else "127.0.0.1"
        self.dest = (host, self.port.getHost().port)
        self.n = n
        self.host = host

    def request(self):
        self.client.sendto(messages.SENSE_REQUEST_ENCRYPTED, self.dest)

    def drain(self, expect):
        got = 0
        sources = set()
        while True:
            try:
                _, addr = self.client.recvfrom(4096)
            except BlockingIOError:
                break
            got += 1
            sources.add(addr[0])
        if got != expect:
            sys.exit(f"expected {expect} replies, got {got}")
        return sources

    def close(self):
        self.port.stopListening()
        self.client.close()


def measure(setup, requests):
    """CPU seconds per request over C{requests} requests (batches of 8, drained between)."""
    total = 0.0
    done = 0
    batch = 8 if setup.n <= 50 else 2
    while done < requests:
        for _ in range(batch):
            setup.request()
        t0 = time.process_time()
        setup.port.doRead()
        total += time.process_time() - t0
        setup.drain(batch * setup.n)
        done += batch
    return total / done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", default="20,200")
    parser.add_argument("--requests", type=int, default=400, help="per round (N = 20)")
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args(argv)
    ns = [int(n) for n in args.plugs.split(",")]
    results = {}
    for n in ns:
        setups = {way: Setup(n, way) for way in WAYS}
        try:
            for way, setup in setups.items():      # warm-up, and check the sources
                setup.request()
                setup.port.doRead()
                sources = setup.drain(n)
                if way != "plain" and sources != {setup.host}:
                    sys.exit(f"{way}: replies from {sources}, not {setup.host}")
            for r in range(args.rounds):
                order = WAYS[r % len(WAYS):] + WAYS[:r % len(WAYS)]
                for way in order:
                    per = measure(setups[way], args.requests // (1 if n <= 50 else 10))
                    results.setdefault((n, way), []).append(per)
        finally:
            for setup in setups.values():
                setup.close()
    print(f"CPU time per Sense request on 0.0.0.0: median of {args.rounds} interleaved rounds, "
          f"and the median of the per-round ratios against plain:\n")
    print("| way | " + " | ".join(f"N = {n}" for n in ns) + " |")
    print("| --- |" + " --- |" * len(ns))
    for way in WAYS:
        cells = []
        for n in ns:
            value = statistics.median(results[(n, way)])
            ratios = [v / b for v, b in zip(results[(n, way)], results[(n, "plain")])]
            cells.append(f"{value * 1e6:.1f} µs ({statistics.median(ratios):.2f}x)")
        print(f"| {way} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
