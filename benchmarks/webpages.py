"""The status page's costs: power history memory per plug, and CPU per Sense request
with 20 pages open (issues 16 and 24).

    python3 benchmarks/webpages.py              # about 2 minutes
    python3 benchmarks/webpages.py --quick      # about 30 s

1. History memory: N plugs' L{senselink.history.PowerHistory}, filled with a
   day of changes, measured with tracemalloc, side by side with the daemon's
   other per-plug memory (plugs, reply cache, energy counters) and with the
   nominal L{senselink.history.BYTES_PER_PLUG}.
2. CPU per Sense request: the daemon (this checkout, web on, 20 plugs, one
   plug changing twice a second so events flow) runs as its own process,
   pinned to CPU 0; a closed-loop UDP load (pinned to CPU 1) sends Sense
   requests and waits for every reply. Server CPU time (``/proc/PID/stat``)
   divided by the requests answered, with 0 and with 20 open event streams
   (each read by a client, as a browser would), interleaved, medians of the
   repetitions, and the ratio.

Everything goes to 127.0.0.1 and stops by itself.
"""

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from senselink import history as _history  # noqa: E402
from senselink.kasa import cipher  # noqa: E402

SENSE = cipher.encrypt(b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}}}')
PAGES = 20                   # open pages; one address may hold 32 web connections
                             # (web.connections.MAX_PER_PEER), so 50 were partly refused
PLUGS = 20


# ---------------------------------------------------------------- memory


class Clock:
    def __init__(self, now):
        self.now = now

    def seconds(self):
        return self.now


def config_text(n, web_port=None, token="benchmark-token-0123456789"):
    lines = []
    if web_port:
        lines += ["web:", f"  listen: tcp:{web_port}:interface=127.0.0.1", f"  token: {token}"]
    lines += ["state_file: STATE", "sources:", "- mutable:", "    plugs:"]
    for i in range(n):
        lines += [f"    - plug{i}:", f"        power: {10 + i}",
                  f"        mac: 53:75:31:00:{i // 256:02X}:{i % 256:02X}"]
    return "\n".join(lines) + "\n"


def memory(n):
    """Bytes per plug: history after a full day of changes, and the rest of the daemon."""
    from senselink import config as _config
    from senselink.service import makeService
    from twisted.internet import task
    workdir = tempfile.mkdtemp()
    path = os.path.join(workdir, "c.yml")
    with open(path, "w") as f:
        f.write(config_text(n).replace("STATE", os.path.join(workdir, "s.json")))
    clock = task.Clock()
    clock.advance(1_800_000_000)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    daemon = makeService(_config.load(path), reactor=clock)
    daemon.replies.sense_replies()                     # the reply cache filled
    rest = tracemalloc.get_traced_memory()[0] - base
    before = tracemalloc.get_traced_memory()[0]
    recorder = _history.PowerHistory(clock)
    recorder.follow(daemon.hub)
    plugs = list(daemon.plugs)
    for minute in range(24 * 60):
        clock.advance(60)
        for i, plug in enumerate(plugs):
            plug.set_power(float((minute + i) % 500))
    for step in range(1200):
        clock.advance(0.5)
        for i, plug in enumerate(plugs):
            plug.set_power(float((step + i) % 900))
    for plug in plugs:
        recorder[plug.id].minutes(clock.seconds())
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / n, rest / n


# ---------------------------------------------------------------- CPU per request


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
    return port


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Streams:
    """C{count} event streams, each read as it arrives (in a thread, bounded in time)."""

    def __init__(self, port, count):
        self.socks = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            s.setblocking(False)
            self.socks.append(s)
        self.received = 0
        self.stop = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop:
            ready, _, _ = select.select(self.socks, [], [], 0.2)
            for s in ready:
                try:
                    self.received += len(s.recv(65536))
                except BlockingIOError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        for s in self.socks:
            s.close()


def load(port, replies_per_request, seconds, inflight=8):
    """Closed loop: C{inflight} sockets, each waits for all replies before the next request."""
    socks = []
    for _ in range(inflight):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    waiting = {s: 0 for s in socks}
    sent = {s: 0.0 for s in socks}
    done = 0
    end = time.monotonic() + seconds
    for s in socks:
        s.sendto(SENSE, ("127.0.0.1", port))
        sent[s] = time.monotonic()
    while time.monotonic() < end:
        ready, _, _ = select.select(socks, [], [], 0.5)
        now = time.monotonic()
        for s in ready:
            while True:
                try:
                    s.recv(4096)
                except BlockingIOError:
                    break
                waiting[s] += 1
            if waiting[s] >= replies_per_request:
                done += 1
                waiting[s] = 0
                s.sendto(SENSE, ("127.0.0.1", port))
                sent[s] = now
        for s in socks:                       # a lost datagram: ask again
            if now - sent[s] > 2.0:
                waiting[s] = 0
                s.sendto(SENSE, ("127.0.0.1", port))
                sent[s] = now
    for s in socks:
        s.close()
    return done


def changer(web_port, stop, token="benchmark-token-0123456789"):
    """A mutable plug changing twice a second through the API (so events flow)."""
    watts = 1.0
    while not stop.is_set():
        watts = 100.0 if watts == 1.0 else 1.0
        request = urllib.request.Request(
            f"http://127.0.0.1:{web_port}/api/plugs/plug0", method="PUT",
            data=json.dumps({"power": watts}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=5).read()
        except OSError:
            pass
        stop.wait(0.5)


def cpu_per_request(reps, seconds):
    workdir = tempfile.mkdtemp()
    port, web_port = free_port(), free_port()
    path = os.path.join(workdir, "c.yml")
    with open(path, "w") as f:
        f.write(config_text(PLUGS, web_port).replace("STATE", os.path.join(workdir, "s.json")))
    env = dict(os.environ, PYTHONPATH=ROOT)
    server = subprocess.Popen(
        [sys.executable, "-m", "senselink", "-c", path, "-p", str(port),
         "--interface", "127.0.0.1", "-l", "warn"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "log"), "w"),
        preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    os.sched_setaffinity(0, {1})
    stop = threading.Event()
    results = {0: [], PAGES: []}     # and "idle N": ms of CPU per second without requests
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        thread = threading.Thread(target=changer, args=(web_port, stop), daemon=True)
        thread.start()
        load(port, PLUGS, 1.0)                                 # warm-up
        for _ in range(reps):
            for pages in (0, PAGES):
                streams = Streams(web_port, pages) if pages else None
                time.sleep(0.5)
                cpu = cpu_seconds(server.pid)
                done = load(port, PLUGS, seconds)
                used = cpu_seconds(server.pid) - cpu
                if streams is not None:
                    streams.close()
                    assert streams.received > 0, "the event streams received nothing"
                results[pages].append((used / done * 1e6, done / seconds))
                time.sleep(0.5)
        for pages in (0, PAGES):                               # no Sense requests: the streams
            streams = Streams(web_port, pages) if pages else None
            time.sleep(0.5)
            cpu = cpu_seconds(server.pid)
            time.sleep(seconds)
            results[f"idle {pages}"] = (cpu_seconds(server.pid) - cpu) / seconds * 1e3
            if streams is not None:
                streams.close()
    finally:
        stop.set()
        server.terminate()
        server.wait(10)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args(argv)
    reps, seconds = (2, 3.0) if options.quick else (5, 8.0)

    print("## Power history memory (tracemalloc, after a full day of changes)\n")
    print("| plugs | history per plug | rest of the daemon per plug | nominal arrays per plug |")
    print("| --- | --- | --- | --- |")
    for n in (20, 200):
        used, rest = memory(n)
        print(f"| {n} | {used / 1024:.1f} KiB | {rest / 1024:.1f} KiB | "
              f"{_history.BYTES_PER_PLUG / 1024:.1f} KiB |")

    print(f"\n## CPU per Sense request, {PLUGS} plugs, 0 vs {PAGES} open pages "
          f"(medians of {reps})\n")
    results = cpu_per_request(reps, seconds)
    zero = statistics.median(r[0] for r in results[0])
    many = statistics.median(r[0] for r in results[PAGES])
    print("| open pages | CPU per request | requests/s | ratio |")
    print("| --- | --- | --- | --- |")
    for pages, value in ((0, zero), (PAGES, many)):
        rate = statistics.median(r[1] for r in results[pages])
        print(f"| {pages} | {value:.1f} µs | {rate:,.0f} | {value / zero:.2f} |")
    print(f"\nWithout Sense requests (one plug changing twice a second): "
          f"{results['idle 0']:.1f} ms of CPU per second with 0 pages, "
          f"{results[f'idle {PAGES}']:.1f} ms with {PAGES}.")
    print("\nraw (µs per request, requests/s):", json.dumps(results))


if __name__ == "__main__":
    main()
