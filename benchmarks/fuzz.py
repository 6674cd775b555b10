"""Fuzz benchmark: throw random and mutated datagrams and TCP streams at a running daemon.

    python3 benchmarks/fuzz.py [--datagrams 1000000] [--streams 2000] [--plugs 20]

Starts `twistd -n senselink` on 127.0.0.1 (a free port, a generated config),
sends the datagrams and streams, then checks that the daemon still answers a
Sense request with every plug, correctly. Reports counts and the number of
exceptions the daemon logged (must be 0). Exit code 0 when all is well.
Only loopback traffic; the daemon it started is stopped by PID.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from senselink.kasa import cipher, messages  # noqa: E402

HOST = "127.0.0.1"

SEEDS = [
    messages.SENSE_REQUEST,
    b'{"system":{"get_sysinfo":{}}}',
    b'{"emeter":{"get_realtime":{"power":1}},"system":{"get_sysinfo":{}}}',
    b'{"emeter":null,"system":{"get_sysinfo":{}}}',
    b'{"system":{"set_relay_state":{"state":0}}}',
    b'{"emeter":{"get_daystat":{"year":2026,"month":11}},"context":{"child_ids":["x"]}}',
    b'[1,2,3]', b'42', b'"text"', b'{"a":' * 50,
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def mutate(rng, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.3 and data:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif op < 0.5 and data:
            del data[rng.randrange(len(data)):]
        elif op < 0.7:
            data[rng.randrange(len(data) + 1):0] = os.urandom(rng.randint(1, 16))
        elif op < 0.85 and data:
            i = rng.randrange(len(data))
            data[i:i] = data[i:i + rng.randint(1, 64)] * rng.randint(1, 8)
        else:
            data = bytearray(os.urandom(rng.randint(0, 64)))
    return bytes(data)


def datagram(rng):
    r = rng.random()
    if r < 0.25:
        return os.urandom(rng.randint(0, 600))
    seed = rng.choice(SEEDS)
    if r < 0.6:
        return cipher.encrypt(mutate(rng, seed))          # mutated plaintext
    if r < 0.95:
        return mutate(rng, cipher.encrypt(seed))          # mutated ciphertext
    return os.urandom(rng.choice([4097, 8000, 65000]))    # oversized


def stream(rng):
    parts = []
    for _ in range(rng.randint(1, 6)):
        r = rng.random()
        if r < 0.3:
            payload = cipher.encrypt(mutate(rng, rng.choice(SEEDS)))
            parts.append(cipher.frame(payload))
        elif r < 0.45:
            parts.append(struct.pack(">I", rng.choice([2 ** 31, 2 ** 32 - 1, 70000, 65537])))
        elif r < 0.6:
            parts.append(cipher.frame(cipher.encrypt(rng.choice(SEEDS)))[:rng.randint(1, 20)])
        else:
            parts.append(os.urandom(rng.randint(0, 300)))
    return b"".join(parts)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sense_check(port, plugs, attempts=50):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        for _ in range(attempts):
            s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (HOST, port))
            seen = {}
            try:
                while len(seen) < plugs:
                    reply = json.loads(cipher.decrypt(s.recv(8192)))
                    info = reply["system"]["get_sysinfo"]
                    seen[info["mac"]] = reply["emeter"]["get_realtime"]["power"]
                return seen
            except socket.timeout:
                continue
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datagrams", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--plugs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    work = tempfile.mkdtemp(prefix="senselink-fuzz-")
    config_path = os.path.join(work, "config.yml")
    with open(config_path, "w") as f:
        f.write("sources:\n- static:\n    plugs:\n")
        for i in range(args.plugs):
            f.write(f"    - p{i}: {{mac: '53:75:31:00:{i // 256:02X}:{i % 256:02X}', max_watts: {i + 1}}}\n")
    port = free_port()
    log_path = os.path.join(work, "daemon.log")
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    if not os.path.exists(twistd):
        twistd = shutil.which("twistd")
    env = {**os.environ, "PYTHONPATH": ROOT}
    with open(log_path, "w") as log:
        daemon = subprocess.Popen([twistd, "-n", "--pidfile=", "senselink", "-c", config_path,
                                   "-p", str(port), "--interface", HOST],
                                  cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if sense_check(port, args.plugs) is None:
            print("daemon did not answer before fuzzing", file=sys.stderr)
            return 2
        rss_before = rss_kib(daemon.pid)
        started = time.monotonic()
        sent_bytes = 0
        rss_samples = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.setblocking(True)
            for i in range(args.datagrams):
                data = datagram(rng)
                try:
                    s.sendto(data, (HOST, port))
                    sent_bytes += len(data)
                except OSError:
                    pass                 # e.g. EMSGSIZE for > 64 KiB: counts as not sent
                if i % 2000 == 1999:
                    time.sleep(0.002)    # let the daemon drain its receive buffer a little
                if i % 100000 == 99999:
                    rss_samples.append(rss_kib(daemon.pid))
        udp_seconds = time.monotonic() - started
        tcp_bytes = 0
        for _ in range(args.streams):
            data = stream(rng)
            with socket.create_connection((HOST, port), timeout=2) as c:
                try:
                    c.sendall(data)
                    tcp_bytes += len(data)
                    c.shutdown(socket.SHUT_WR)
                    c.settimeout(0.5)
                    while c.recv(65536):
                        pass
                except OSError:
                    pass
        seen = sense_check(port, args.plugs)
        rss_after = rss_kib(daemon.pid)
        ok = seen is not None and sorted(seen.values()) == [float(i + 1) for i in range(args.plugs)]
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    text = open(log_path, encoding="utf-8", errors="replace").read()
    exceptions = len(re.findall(r"Traceback|Unhandled|Unexpected error", text))
    totals = re.findall(r"Stopping: (requests .*)", text)
    print(f"datagrams sent: {args.datagrams} ({sent_bytes / 1e6:.1f} MB in {udp_seconds:.1f} s)")
    print(f"TCP streams:    {args.streams} ({tcp_bytes / 1e3:.1f} kB)")
    print(f"daemon totals:  {totals[-1] if totals else '(not logged)'}")
    print(f"exceptions logged: {exceptions}")
    print(f"daemon RSS: {rss_before / 1024:.1f} MiB before, {rss_after / 1024:.1f} MiB after "
          f"({(rss_after - rss_before) / 1024:+.1f} MiB); every 10^5 datagrams: "
          + " ".join(f"{k / 1024:.1f}" for k in rss_samples))
    print(f"Sense request after fuzzing: {'answered correctly' if ok else 'NOT answered correctly'}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if ok and exceptions == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
