"""Cost of a Sense request when K of the N plugs changed value since the last one.

    python3 benchmarks/changes.py [--plugs 20,200] [--seconds 3]
    (also run by ``python3 benchmarks/run.py``, or ``--only changes``)

Our daemon runs with N mutable plugs through ``twistd
senselink-bench-control`` (``baseline/senselink_control.py``: the daemon plus
a UDP control port on 127.0.0.1 whose datagram ``K VALUE`` sets the first K
plugs to VALUE with ``Plug.set_power``, what a source's feed does), pinned to
CPU 0; this process, on CPU 1, runs one cycle at a time, for a fixed time
per phase:

- ``changes``: set K plugs to a new value (wait for the ``ok``);
- ``changes+poll``: the same, then one Sense poll, all N replies checked
  (decrypted, parsed, each plug's power the value it must have now).

The server CPU time of each phase (``/proc/PID/task/*/schedstat``) per cycle
gives the cost of a Sense request after K changes as
CPU(changes+poll) - CPU(changes): the request, the re-encoding of the plugs
that changed (replies are kept until the plug changes), and the datagrams.
K = 0, 1, N, for each N.
"""

import argparse
import json
import os
import select
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ingest  # noqa: E402
import loadgen  # noqa: E402

DAEMON_CPU = 0
CLIENT_CPU = 1


def config(n):
    lines = ["sources:", "  - mutable:", "      plugs:"]
    for i in range(n):
        lines += [f"        - plug{i:03d}:", f"            mac: {ingest.plug_mac(i)}",
                  f"            power: {10 + i}"]
    return "\n".join(lines) + "\n"


class Cycle:
    def __init__(self, port, control_port, n):
        self.addr = ("127.0.0.1", port)
        self.control = ("127.0.0.1", control_port)
        self.n = n
        self.macs = [ingest.plug_mac(i) for i in range(n)]
        self.expected = {mac: float(10 + i) for i, mac in enumerate(self.macs)}
        self.sock = loadgen.udp_socket()
        self.csock = loadgen.udp_socket()
        self.seen = {}      # reply bytes -> (mac, power): unchanged replies are parsed once
        self.value = 1000

    def _recv(self, sock, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return sock.recv(65536)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no answer in time") from None
                select.select([sock], [], [], left)

    def change(self, k):
        self.value += 1
        self.csock.sendto(b"%d %d" % (k, self.value), self.control)
        if self._recv(self.csock) != b"ok %d" % k:
            raise RuntimeError("bad control answer")
        for mac in self.macs[:k]:
            self.expected[mac] = float(self.value)

    def poll(self):
        self.sock.sendto(loadgen.REQUEST, self.addr)
        got = set()
        while len(got) < self.n:
            data = self._recv(self.sock)
            known = self.seen.get(data)
            if known is None:
                reply = json.loads(loadgen.decrypt(data))
                known = (reply["system"]["get_sysinfo"]["mac"].upper(),
                         float(reply["emeter"]["get_realtime"]["power"]))
                if len(self.seen) < 100_000:
                    self.seen[data] = known
            mac, power = known
            if mac in got or abs(self.expected.get(mac, -1) - power) > 1e-6:
                raise RuntimeError(f"plug {mac}: {power} W, expected {self.expected.get(mac)}")
            got.add(mac)

    def phase(self, pid, k, poll, seconds):
        """Cycles for C{seconds}; server CPU microseconds per cycle."""
        cpu0 = loadgen.server_cpu_ns(pid)
        t0 = time.monotonic()
        cycles = 0
        while time.monotonic() - t0 < seconds:
            self.change(k)
            if poll:
                self.poll()
            cycles += 1
        return (loadgen.server_cpu_ns(pid) - cpu0) / 1e3 / cycles, cycles


def bench_changes(workdir, ns=(20, 200), seconds=3.0, reps=1):
    """{n: {k: {"request_us", "changes_us", "cycles"}}} (medians over C{reps})."""
    out = {}
    for n in ns:
        path = os.path.join(workdir, f"changes-{n}.yml")
        with open(path, "w") as f:
            f.write(config(n))
        port, control_port = ingest.free_port(), ingest.free_port()
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
                "--pidfile=", "senselink-bench-control", "--control-port", str(control_port),
                "-c", path, "-p", str(port), "--interface", "127.0.0.1"]
        daemon = ingest.start(argv, os.path.join(workdir, f"changes-{n}.log"), DAEMON_CPU,
                              env=ingest.twisted_env())
        try:
            ingest.wait_answering(daemon, port, n)
            cycle = Cycle(port, control_port, n)
            cycle.phase(daemon.pid, n, True, 0.5)          # warm-up
            rows = {}
            for _ in range(reps):
                for k in (0, 1, n):
                    changes, _ = cycle.phase(daemon.pid, k, False, seconds)
                    both, cycles = cycle.phase(daemon.pid, k, True, seconds)
                    rows.setdefault(k, []).append((both - changes, changes, cycles))
            out[n] = {k: {"request_us": statistics.median(r[0] for r in v),
                          "changes_us": statistics.median(r[1] for r in v),
                          "cycles": sum(r[2] for r in v)} for k, v in rows.items()}
            if daemon.poll() is not None:
                raise RuntimeError("daemon exited during the run")
        finally:
            ingest.stop(daemon)
    return out


def table(result):
    lines = ["| N | K changed | CPU µs per Sense request | + per changed plug | CPU µs for the K changes alone | cycles |",
             "| --- | --- | --- | --- | --- | --- |"]
    for n, rows in result.items():
        base = rows[0]["request_us"]
        for k, row in rows.items():
            extra = "-" if k == 0 else f"{(row['request_us'] - base) / k:.1f}"
            lines.append(f"| {n} | {k} | {row['request_us']:.0f} | {extra} | "
                         f"{row['changes_us']:.0f} | {row['cycles']} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="cost of changes between Sense requests")
    parser.add_argument("--plugs", default="20,200")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CPU})
    with tempfile.TemporaryDirectory(prefix="senselink-changes-") as workdir:
        result = bench_changes(workdir, [int(n) for n in args.plugs.split(",")], args.seconds,
                               args.reps)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
