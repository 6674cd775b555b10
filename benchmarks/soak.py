"""Soak benchmark: the daemon under steady Sense traffic and source churn; RSS at start and end.

    python3 benchmarks/soak.py [--minutes 10] [--rate 20] [--warmup 30]

Starts, all on 127.0.0.1 and free ports: a mosquitto broker (tests/mosquitto.py),
a fake Home Assistant (tests/hass_server.py, in this process), an HTTP meter
(twisted.web, in this process) and `twistd -n senselink` with static, MQTT,
Home Assistant and HTTP plugs and the web interface. Then, for --minutes:
Sense requests at --rate per second; MQTT publishes, Home Assistant state
changes and new HTTP values several times a second; a web API read every few
seconds; the broker restarted every --broker-restart seconds and the Home
Assistant websocket dropped (no close frame) every --hass-drop seconds.

The daemon's RSS (VmRSS in /proc/PID/status) is sampled every 5 s. Printed:
RSS after the warm-up and at the end, the growth, min/max, Sense requests
and replies, and the exceptions the daemon logged. Exit code 1 when RSS grew
by 5 MB or more, the daemon died, or it logged an exception.
Everything stops by itself; only the processes it started are stopped, by PID.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, protocol, reactor, task  # noqa: E402
from twisted.web.client import Agent, HTTPConnectionPool, readBody  # noqa: E402

from senselink.kasa import cipher, messages  # noqa: E402
from tests.hass_server import FakeHomeAssistant  # noqa: E402
from tests.httpserver import TrackingSite  # noqa: E402
from tests.mosquitto import Broker  # noqa: E402
from tests.support import free_port  # noqa: E402
from tests.httpserver import Meter  # noqa: E402

HOST = "127.0.0.1"
TOKEN = "soak-benchmark-token"
LIMIT_MB = 5.0
SAMPLE_SECONDS = 5.0
N = 3   # plugs per source kind


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def config_text(broker_port, hass_url, http_port, web_port):
    lines = [f"web:\n  listen: tcp:{web_port}:interface={HOST}\n", "sources:\n",
             "- static:\n    plugs:\n"]
    mac = iter(range(1, 100))
    for i in range(N):
        lines.append(f"    - static{i}: {{mac: '53:75:31:00:05:{next(mac):02X}', "
                     f"max_watts: {10 + i}}}\n")
    lines.append(f"- mqtt:\n    host: {HOST}\n    port: {broker_port}\n    plugs:\n")
    for i in range(N):
        lines.append(f"    - mqtt{i}: {{mac: '53:75:31:00:05:{next(mac):02X}', "
                     f"power_topic: soak/mqtt{i}}}\n")
    lines.append(f"- hass:\n    url: {hass_url}\n    auth_token: {TOKEN}\n    plugs:\n")
    for i in range(N):
        lines.append(f"    - hass{i}: {{mac: '53:75:31:00:05:{next(mac):02X}', "
                     f"entity_id: sensor.soak{i}}}\n")
    lines.append(f"- http:\n    url: http://{HOST}:{http_port}/meter\n    interval: 0.5\n"
                 f"    timeout: 2\n    plugs:\n")
    for i in range(N):
        lines.append(f"    - http{i}: {{mac: '53:75:31:00:05:{next(mac):02X}', "
                     f"power_keypath: p{i}}}\n")
    return "".join(lines)


class SenseClient(protocol.DatagramProtocol):
    noisy = False

    def __init__(self, port):
        self.port = port
        self.sent = 0
        self.replies = 0
        self.bad = 0

    def ask(self):
        self.transport.write(messages.SENSE_REQUEST_ENCRYPTED, (HOST, self.port))
        self.sent += 1

    def datagramReceived(self, data, addr):
        try:
            reply = json.loads(cipher.decrypt(data))
            reply["emeter"]["get_realtime"]["power"]
            self.replies += 1
        except Exception:
            self.bad += 1


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="senselink-soak-")
        self.daemon = None
        self.broker = None
        self.home = None
        self.samples = []          # (seconds since start, RSS kB)
        self.baseline = None       # RSS kB after the warm-up
        self.counts = {"mqtt publishes": 0, "mqtt failed publishes": 0, "hass changes": 0,
                       "http values": 0, "web reads": 0, "web failures": 0,
                       "broker restarts": 0, "hass drops": 0}
        self.loops = []
        self.value = 0
        self.turns = {"mqtt": 0, "hass": 0}   # which plug each churn changes next (round robin)
        self.result = 1
        self.finished = False

    # -- start --

    @defer.inlineCallbacks
    def start(self):
        self.broker = Broker()
        yield self.broker.start()
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        for i in range(N):
            self.home.set_state(f"sensor.soak{i}", "1", {"unit_of_measurement": "W"})
        self.meter = Meter()
        self.meter.reply = (200, b'{"p0": 1, "p1": 1, "p2": 1}')
        self.http_port = reactor.listenTCP(0, TrackingSite(self.meter), interface=HOST)
        self.kasa_port = free_port()
        self.web_port = free_port()
        path = os.path.join(self.work, "soak.yml")
        with open(path, "w") as f:
            f.write(config_text(self.broker.port, self.home.url, self.http_port.getHost().port,
                                self.web_port))
        os.chmod(path, 0o600)
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        if not os.path.exists(twistd):
            twistd = shutil.which("twistd")
        self.log_path = os.path.join(self.work, "daemon.log")
        with open(self.log_path, "w") as log:
            self.daemon = subprocess.Popen(
                [twistd, "-n", "--pidfile=", "senselink", "-c", path, "-p", str(self.kasa_port),
                 "--interface", HOST], cwd=self.work, env={**os.environ, "PYTHONPATH": ROOT},
                stdout=log, stderr=subprocess.STDOUT)
        self.client = SenseClient(self.kasa_port)
        self.udp = reactor.listenUDP(0, self.client, interface=HOST)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)
        yield self.wait_ready()
        self.client.sent = self.client.replies = 0
        self.started = reactor.seconds()
        a = self.args
        self.every(1.0 / a.rate, self.client.ask)
        self.every(0.5, self.publish)
        self.every(0.2, self.hass_change)
        self.every(0.5, self.http_change)
        self.every(3.0, self.web_read)
        self.every(a.broker_restart, self.restart_broker, now=False)
        self.every(a.hass_drop, self.drop_hass, now=False)
        self.every(SAMPLE_SECONDS, self.sample)
        reactor.callLater(a.warmup, self.warmed_up)
        reactor.callLater(a.warmup + a.minutes * 60, self.finish)

    @defer.inlineCallbacks
    def wait_ready(self, timeout=60.0):
        """Ask like Sense until every plug answers and the web interface is up (bounded)."""
        deadline = reactor.seconds() + timeout
        while reactor.seconds() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with code {self.daemon.returncode}")
            before = self.client.replies
            self.client.ask()
            yield task.deferLater(reactor, 0.2, lambda: None)
            if self.client.replies - before == 4 * N:
                try:
                    yield self.agent.request(
                        b"GET", f"http://{HOST}:{self.web_port}/api/plugs".encode()
                    ).addCallback(readBody)
                except Exception:
                    continue
                return
        raise RuntimeError(f"the daemon did not answer within {timeout:g} s")

    def every(self, seconds, f, now=True):
        loop = task.LoopingCall(f)
        loop.start(seconds, now=now).addErrback(self.crashed)
        self.loops.append(loop)

    def crashed(self, failure):
        print(f"soak: internal error: {failure.getTraceback()}", file=sys.stderr)
        self.finish()

    # -- churn --

    def turn(self, kind):
        self.turns[kind] += 1
        return self.turns[kind] % N

    def next_value(self):
        self.value = self.value % 1000 + 1
        return self.value

    def publish(self):
        if self.broker.process is None:
            return
        i = self.turn("mqtt")
        self.counts["mqtt publishes"] += 1
        d = self.broker.publish(f"soak/mqtt{i}", str(self.next_value()))
        d.addErrback(lambda _: self.counts.__setitem__(
            "mqtt failed publishes", self.counts["mqtt failed publishes"] + 1))

    def hass_change(self):
        i = self.turn("hass")
        self.home.set_state(f"sensor.soak{i}", str(self.next_value()),
                            {"unit_of_measurement": "W", "friendly_name": f"Soak {i}"})
        self.counts["hass changes"] += 1

    def http_change(self):
        v = self.next_value()
        self.meter.reply = (200, json.dumps({f"p{i}": v + i for i in range(N)}).encode())
        self.counts["http values"] += 1

    def web_read(self):
        d = self.agent.request(b"GET", f"http://{HOST}:{self.web_port}/api/plugs".encode())
        d.addCallback(readBody)
        d.addCallbacks(lambda _: self.counts.__setitem__("web reads",
                                                         self.counts["web reads"] + 1),
                       lambda _: self.counts.__setitem__("web failures",
                                                         self.counts["web failures"] + 1))

    def restart_broker(self):
        self.broker.kill()
        self.counts["broker restarts"] += 1
        reactor.callLater(1.0, lambda: self.broker.process is None and self.broker.start()
                          .addErrback(self.crashed))

    def drop_hass(self):
        self.home.drop_connections()
        self.counts["hass drops"] += 1

    # -- measuring --

    def sample(self):
        if self.daemon.poll() is not None:
            print(f"soak: the daemon exited with code {self.daemon.returncode}", file=sys.stderr)
            self.finish()
            return
        rss = rss_kb(self.daemon.pid)
        if rss is not None:
            self.samples.append((reactor.seconds() - self.started, rss))

    def warmed_up(self):
        self.sample()
        if not self.samples:
            return
        self.baseline = self.samples[-1]
        print(f"warm-up done after {self.args.warmup:.0f} s: RSS {self.baseline[1] / 1024:.1f} MB; "
              f"soaking for {self.args.minutes:g} min", flush=True)

    @defer.inlineCallbacks
    def finish(self):
        if self.finished:
            return
        self.finished = True
        if self.daemon is None:     # could not even start
            reactor.stop()
            return
        for loop in self.loops:
            if loop.running:
                loop.stop()
        self.loops = []
        alive = self.daemon.poll() is None
        if alive:
            self.sample()
        end = self.samples[-1] if self.samples else None
        fresh = None
        if alive:
            try:   # which source plugs got a value in the last 10 s: the sources still work
                body = yield self.agent.request(
                    b"GET", f"http://{HOST}:{self.web_port}/api/plugs".encode()
                ).addCallback(readBody).addTimeout(10, reactor)
                plugs = json.loads(body)["plugs"]
                fresh = sum(1 for p in plugs if p["kind"] != "static"
                            and p["age"] is not None and p["age"] < 10)
            except Exception as e:
                print(f"soak: cannot read /api/plugs at the end: {e}", file=sys.stderr)
        yield task.deferLater(reactor, 1.0, lambda: None)   # the last replies
        self.stop_daemon()
        yield self.udp.stopListening()
        yield self.pool.closeCachedConnections()
        if self.home.port is not None:
            yield self.home.stop()
        yield self.http_port.stopListening()
        self.broker.cleanup()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        exceptions = len(re.findall(r"Traceback|Unhandled|Unexpected error", text))
        totals = re.findall(r"Stopping: (requests .*)", text)
        c = self.client
        plugs = 4 * N
        print(f"daemon PID {self.daemon.pid}, {plugs} plugs "
              f"({N} static, {N} mqtt, {N} hass, {N} http), Sense at {self.args.rate:g}/s")
        print(f"Sense requests sent: {c.sent}, replies: {c.replies} "
              f"(expected {c.sent * plugs}, missing {c.sent * plugs - c.replies}), "
              f"undecodable: {c.bad}")
        print("churn: " + ", ".join(f"{k} {v}" for k, v in self.counts.items()))
        print(f"daemon totals: {totals[-1] if totals else '(not logged)'}")
        print(f"exceptions logged: {exceptions}")
        print(f"source plugs updated in the last 10 s at the end: "
              f"{'?' if fresh is None else fresh}/{3 * N}")
        ok = alive and exceptions == 0 and self.baseline is not None and end is not None
        if self.baseline is not None and end is not None:
            values = [rss for t, rss in self.samples if t >= self.baseline[0]]
            growth = (end[1] - self.baseline[1]) / 1024
            print(f"RSS start (after warm-up, t={self.baseline[0]:.0f} s): "
                  f"{self.baseline[1] / 1024:.1f} MB")
            print(f"RSS end (t={end[0]:.0f} s): {end[1] / 1024:.1f} MB")
            print(f"RSS min/max during the soak: {min(values) / 1024:.1f} / "
                  f"{max(values) / 1024:.1f} MB ({len(values)} samples)")
            print(f"RSS growth: {growth:+.2f} MB (limit {LIMIT_MB:g} MB)")
            # The curve, one sample a minute after the warm-up: a leak climbs, caches level off.
            curve, due = [], self.baseline[0]
            for t, rss in self.samples:
                if t >= due:
                    curve.append(f"{rss / 1024:.2f}")
                    due += 60
            print("RSS each minute after the warm-up (MB): " + " ".join(curve))
            ok = ok and growth < LIMIT_MB
        else:
            print("RSS: not measured (the daemon ended before the warm-up was over)")
        print("result: " + ("OK" if ok else "FAILED"))
        self.result = 0 if ok else 1
        shutil.rmtree(self.work, ignore_errors=True)
        reactor.stop()

    def stop_daemon(self):
        daemon = self.daemon
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()

    def emergency_stop(self):
        """On an unexpected exit: stop only the processes this benchmark started."""
        self.stop_daemon()
        if self.broker is not None:
            self.broker.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="soak time after the warm-up")
    parser.add_argument("--rate", type=float, default=20.0, help="Sense requests per second")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the start RSS")
    parser.add_argument("--broker-restart", type=float, default=60.0,
                        help="seconds between broker restarts")
    parser.add_argument("--hass-drop", type=float, default=45.0,
                        help="seconds between dropped Home Assistant websockets")
    args = parser.parse_args()
    soak = Soak(args)

    def begin():
        soak.start().addErrback(soak.crashed)

    reactor.callWhenRunning(begin)
    # A hard bound: whatever happens, stop after the planned time plus two minutes.
    reactor.callLater(args.warmup + args.minutes * 60 + 120, reactor.stop)
    try:
        reactor.run()
    finally:
        soak.emergency_stop()
    return soak.result


if __name__ == "__main__":
    sys.exit(main())
