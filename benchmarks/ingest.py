"""Ingest benchmarks: how fast source updates reach the plugs, against a bare consumer.

    python3 benchmarks/run.py --only ingest        # MQTT and Home Assistant, 5 rounds
    python3 benchmarks/ingest.py [mqtt] [hass]      # one round
    python3 benchmarks/ingest.py mqtt --rounds 5 --per-plug 10000   # the ratio of each round

Both ingest benchmarks measure the same thing for our daemon and for a bare
reference consumer, one after the other from the same server in the same run:

1. the consumer connects and subscribes (the server's log, or the test
   server, says when);
2. the consumer is stopped (SIGSTOP by its PID);
3. the server is given M x K updates (K per plug, values 1..K, strictly
   increasing), which pile up in the socket buffers and the server's queue;
4. the consumer is continued (SIGCONT) and the clock starts;
5. the clock stops when the consumer has taken in the last update: for our
   daemon, when a Sense poll (UDP, every 5 ms) shows the value K on every
   plug; for the reference, when it has counted all M x K messages.

rate = M x K / that time: the consumer's drain rate, so the publisher's
speed does not enter the figure. The consumer is pinned to CPU 0, the server
and the publishers to CPU 1; the consumer's CPU time per update is reported
too (robust against other work on the machine).

MQTT: a real mosquitto on a free loopback port (its own config: no logging
but subscriptions, unlimited queues; the broker's ``$SYS`` drop counter is
checked afterwards); K messages per topic published by one ``mosquitto_pub
-l`` per topic; the reference is ``mosquitto_sub -C M*K``.

Home Assistant: ``tests/hass_server.py``'s fake server run by
``hass_runner.py`` pushes ``subscribe_entities`` change events (``c`` diffs:
the ``power`` attribute, ``lu`` and the context change each time); the
reference is ``hass_bare_client.py``, an Autobahn client that only
``json.loads`` each message and counts the changes.

Changes between requests (``changes``): see L{bench_changes}.
"""

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import loadgen  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))
# The tests' helpers: where the mosquitto programs are, and free loopback ports.
from tests.mosquitto import MOSQUITTO, MOSQUITTO_PUB, _find  # noqa: E402
from tests.support import free_port  # noqa: E402

CONSUMER_CPU = 0
SERVER_CPU = 1
HOST = "127.0.0.1"


MOSQUITTO_SUB = _find("mosquitto_sub")


# -- processes ----------------------------------------------------------------

def _pinner(cpu):
    def pin():
        os.sched_setaffinity(0, {cpu})
    return pin


def twisted_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(HERE, "baseline")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def start(argv, log_path, cpu, env=None, stdin=subprocess.DEVNULL, stdout=None):
    log = open(log_path, "ab")
    process = subprocess.Popen(argv, env=env, stdout=stdout if stdout is not None else log,
                               stderr=log, stdin=stdin, preexec_fn=_pinner(cpu), cwd=HERE)
    log.close()
    return process


def stop(process, timeout=10.0):
    """Stop a process we started, by its PID: SIGCONT (if stopped), SIGTERM, SIGKILL."""
    if process is None or process.poll() is not None:
        return
    try:
        os.kill(process.pid, signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
    except ProcessLookupError:
        pass


def cpu_ns(pid):
    return loadgen.server_cpu_ns(pid)


def wait_cpu_s(process, timeout):
    """Wait for C{process} to exit; its total CPU seconds (user + system), via wait4."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        time.sleep(0.001)
    raise RuntimeError(f"{process.args[0]} did not finish within {timeout} s")


class Lines:
    """Reads lines from a child's stdout pipe with a time limit."""

    def __init__(self, process):
        self.fd = process.stdout.fileno()
        self.buffer = b""

    def read(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no answer from the child process in time")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise RuntimeError("the child process closed its output")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()


# -- observing our daemon from outside: Sense polls ---------------------------

def sense_powers(port, n, timeout=0.2):
    """One Sense poll: C{{mac: power}} of the replies received within C{timeout}."""
    sock = loadgen.udp_socket()
    try:
        sock.sendto(loadgen.REQUEST, (HOST, port))
        powers = {}
        deadline = time.monotonic() + timeout
        while len(powers) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            while True:
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    break
                reply = json.loads(loadgen.decrypt(data))
                powers[reply["system"]["get_sysinfo"]["mac"].upper()] = \
                    reply["emeter"]["get_realtime"]["power"]
        return powers
    finally:
        sock.close()


def wait_values(port, macs, value, limit, interval=0.005):
    """Poll until every plug in C{macs} reports C{value}; the wall-clock time it did."""
    deadline = time.monotonic() + limit
    want = {m.upper() for m in macs}
    while time.monotonic() < deadline:
        powers = sense_powers(port, len(want))
        now = time.time()
        if all(abs(powers.get(m, -1.0) - value) < 1e-6 for m in want):
            return now
        time.sleep(interval)
    raise RuntimeError(f"the plugs did not all reach {value} W within {limit} s "
                       f"(last poll: {sorted(set(sense_powers(port, len(want)).values()))[:5]})")


def wait_answering(process, port, n, limit=30.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daemon exited with {process.returncode}")
        if len(sense_powers(port, n, timeout=0.05)) == n:
            return
        time.sleep(0.02)
    raise RuntimeError("daemon did not answer in time")


def plug_mac(i):
    return f"53:75:31:1D:{i // 256:02X}:{i % 256:02X}"


PROFILE = {}   # {"py_spy": path, "daemon": name, "out": prefix}: see --py-spy


def maybe_profile(pid, name, kind):
    """With --py-spy, sample daemon C{name} for 6 s from now (raw collapsed stacks)."""
    if not PROFILE or PROFILE["daemon"] != name:
        return None
    out = f"{PROFILE['out']}-{kind}-{name}.txt"
    return subprocess.Popen([PROFILE["py_spy"], "record", "-p", str(pid), "-d", "6", "-r", "500",
                             "-f", "raw", "-o", out], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


# name -> twistd plugin (experiments that patch the daemon from outside can be added here)
DAEMONS = {"ours": "senselink"}


def start_daemon(config_text, workdir, name, plugin="senselink", log_level="INFO"):
    path = os.path.join(workdir, f"{name}.yml")
    with open(path, "w") as f:
        f.write(config_text)
    port = free_port()
    argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "-n",
            "--pidfile=", plugin, "-c", path, "-p", str(port), "--interface", HOST,
            "-l", log_level]
    process = start(argv, os.path.join(workdir, f"{name}.log"), CONSUMER_CPU, env=twisted_env())
    return process, port


def drain(daemon, port, macs, per_plug, total, log_path, fill, name, kind, limit):
    """Steps 2-5 for our daemon: stop it, C{fill()} the backlog, continue it, time the drain."""
    rss0 = loadgen.rss_kib(daemon.pid)
    log0 = os.path.getsize(log_path)
    os.kill(daemon.pid, signal.SIGSTOP)
    fill()
    cpu0 = cpu_ns(daemon.pid)
    t0 = time.time()
    os.kill(daemon.pid, signal.SIGCONT)
    spy = maybe_profile(daemon.pid, name, kind)
    t1 = wait_values(port, macs, float(per_plug), limit)
    cpu1 = cpu_ns(daemon.pid)
    if spy is not None:
        spy.wait(30)
    if daemon.poll() is not None:
        raise RuntimeError("daemon exited during the run")
    return {"per_s": total / (t1 - t0), "seconds": t1 - t0,
            "cpu_us_per_update": (cpu1 - cpu0) / 1e3 / total,
            "rss_growth_kib": loadgen.rss_kib(daemon.pid) - rss0,
            # written to the daemon's log while it took in the updates
            "log_bytes": os.path.getsize(log_path) - log0}


# -- MQTT ---------------------------------------------------------------------

class Broker:
    """mosquitto on a free loopback port, stopped by its PID."""

    def __init__(self, workdir):
        if not (MOSQUITTO and MOSQUITTO_PUB and MOSQUITTO_SUB):
            raise RuntimeError("mosquitto, mosquitto_pub and mosquitto_sub are needed "
                               "(apt-get install mosquitto mosquitto-clients)")
        self.port = free_port()
        self.log_path = os.path.join(workdir, f"mosquitto-{self.port}.log")
        config = os.path.join(workdir, f"mosquitto-{self.port}.conf")
        import pwd
        with open(config, "w") as f:
            f.write(f"listener {self.port} {HOST}\nallow_anonymous true\npersistence false\n"
                    f"max_queued_messages 0\nmax_queued_bytes 0\nsys_interval 1\n"
                    f"log_dest file {self.log_path}\nlog_type subscribe\nlog_type error\n"
                    f"log_type warning\nuser {pwd.getpwuid(os.getuid()).pw_name}\n")
        self.process = start([MOSQUITTO, "-c", config], self.log_path + ".out", SERVER_CPU)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex((HOST, self.port)) == 0:
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("mosquitto did not start")

    def stop(self):
        stop(self.process)

    def wait_subscribed(self, client_id, topics, limit=20.0):
        deadline = time.monotonic() + limit
        want = set(topics)
        while time.monotonic() < deadline:
            seen = set()
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    parts = line.split()
                    # "<time>: <client id> <qos> <topic>"
                    if len(parts) == 4 and parts[1] == client_id and parts[2] in "012":
                        seen.add(parts[3])
            if want <= seen:
                return
            time.sleep(0.02)
        raise RuntimeError(f"{client_id} did not subscribe to {len(want)} topics in {limit} s")

    def sys_value(self, topic, limit=5.0):
        out = subprocess.run([MOSQUITTO_SUB, "-h", HOST, "-p", str(self.port), "-t", topic,
                              "-C", "1", "-W", str(int(limit))],
                             capture_output=True, timeout=limit + 5)
        return out.stdout.decode().strip()

    def publish_all(self, topics, per_topic, workdir, limit):
        """K = C{per_topic} messages 1..K on each topic, one C{mosquitto_pub -l} per topic."""
        payload = os.path.join(workdir, f"payload-{per_topic}.txt")
        if not os.path.exists(payload):
            with open(payload, "w") as f:
                f.write("".join(f"{k}\n" for k in range(1, per_topic + 1)))
        publishers = []
        try:
            for topic in topics:
                with open(payload, "rb") as stdin:
                    publishers.append(start([MOSQUITTO_PUB, "-h", HOST, "-p", str(self.port),
                                             "-t", topic, "-q", "0", "-l"],
                                            os.path.join(workdir, "mosquitto_pub.log"),
                                            SERVER_CPU, stdin=stdin))
            deadline = time.monotonic() + limit
            for p in publishers:
                p.wait(max(0.1, deadline - time.monotonic()))
                if p.returncode != 0:
                    raise RuntimeError(f"mosquitto_pub exited with {p.returncode}")
        finally:
            for p in publishers:
                stop(p)


def mqtt_config(broker_port, plugs, client_id):
    lines = ["sources:", "  - mqtt:", f"      host: {HOST}", f"      port: {broker_port}",
             f"      client_id: {client_id}", "      plugs:"]
    for i in range(plugs):
        lines += [f"        - mqtt{i:03d}:", f"            mac: {plug_mac(i)}",
                  f"            power_topic: bench/p{i:03d}"]
    return "\n".join(lines) + "\n"


def bench_mqtt(workdir, plugs=20, per_plug=2500, limit=120.0, daemons=("ours",)):
    """Updates applied per second by our daemon and by mosquitto_sub, same broker, same run."""
    topics = [f"bench/p{i:03d}" for i in range(plugs)]
    total = plugs * per_plug
    macs = [plug_mac(i) for i in range(plugs)]
    broker = Broker(workdir)
    result = {"plugs": plugs, "messages": total}
    try:
        for name in daemons:
            client_id = f"senselink-bench-{name}"
            daemon, port = start_daemon(mqtt_config(broker.port, plugs, client_id), workdir,
                                        f"mqtt-{name}", DAEMONS[name])
            try:
                wait_answering(daemon, port, plugs)
                broker.wait_subscribed(client_id, topics)
                result[name] = drain(
                    daemon, port, macs, per_plug, total, os.path.join(workdir, f"mqtt-{name}.log"),
                    lambda: broker.publish_all(topics, per_plug, workdir, limit), name, "mqtt",
                    limit)
            finally:
                stop(daemon)
        # mosquitto_sub, same topics, same messages
        argv = [MOSQUITTO_SUB, "-h", HOST, "-p", str(broker.port), "-i", "bench-sub",
                "-q", "0", "-C", str(total)]
        for topic in topics:
            argv += ["-t", topic]
        with open(os.devnull, "wb") as devnull:
            sub = start(argv, os.path.join(workdir, "mosquitto_sub.log"), CONSUMER_CPU,
                        stdout=devnull)
        try:
            broker.wait_subscribed("bench-sub", topics)
            os.kill(sub.pid, signal.SIGSTOP)
            broker.publish_all(topics, per_plug, workdir, limit)
            t0 = time.time()
            os.kill(sub.pid, signal.SIGCONT)
            cpu = wait_cpu_s(sub, limit)
            t1 = time.time()
            if sub.returncode != 0:
                raise RuntimeError(f"mosquitto_sub exited with {sub.returncode}")
            # CPU: its whole life, connecting included
            result["reference"] = {"per_s": total / (t1 - t0), "seconds": t1 - t0,
                                   "cpu_us_per_update": cpu * 1e6 / total}
        finally:
            stop(sub)
        result["broker_dropped"] = broker.sys_value("$SYS/broker/publish/messages/dropped")
    finally:
        broker.stop()
    for name in daemons:
        result[name]["ratio"] = result[name]["per_s"] / result["reference"]["per_s"]
    return result


# -- Home Assistant -------------------------------------------------------------

TOKEN = "bench-token"


def hass_config(url, plugs):
    lines = ["sources:", "  - hass:", f"      url: {url}", f"      auth_token: {TOKEN}",
             "      plugs:"]
    for i in range(plugs):
        lines += [f"        - hass{i:03d}:", f"            mac: {plug_mac(i)}",
                  f"            entity_id: sensor.bench_plug_{i:03d}",
                  "            power_keypath: attributes/power"]
    return "\n".join(lines) + "\n"


class HassServer:
    """hass_runner.py: the tests' fake Home Assistant in its own process."""

    def __init__(self, workdir, plugs):
        self.process = start([sys.executable, os.path.join(HERE, "hass_runner.py"), TOKEN,
                              str(plugs)], os.path.join(workdir, "hass_runner.log"), SERVER_CPU,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=twisted_env())
        self.lines = Lines(self.process)
        self.url = self.lines.read(20)
        self.value = 0   # every entity's power now

    def ask(self, command, timeout):
        self.process.stdin.write(command.encode() + b"\n")
        self.process.stdin.flush()
        return self.lines.read(timeout)

    def wait_subscribers(self, n, limit=20.0):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if int(self.ask("subscribers", 5)) == n:
                return
            time.sleep(0.02)
        raise RuntimeError("no subscribe_entities subscriber in time")

    def push(self, per_plug, limit):
        """Every entity's power to 1..K in turn; the number of changes sent."""
        pushed = int(self.ask(f"push {per_plug}", limit))
        self.value = per_plug
        return pushed

    def stop(self):
        stop(self.process)


def bench_hass(workdir, plugs=20, per_plug=1500, limit=120.0, daemons=("ours",)):
    """subscribe_entities changes applied per second by ours and by a bare Autobahn client."""
    total = plugs * per_plug
    macs = [plug_mac(i) for i in range(plugs)]
    server = HassServer(workdir, plugs)
    result = {"plugs": plugs, "messages": total}
    try:
        for name in daemons:
            daemon, port = start_daemon(hass_config(server.url, plugs), workdir,
                                        f"hass-{name}", DAEMONS[name])
            try:
                wait_answering(daemon, port, plugs)
                server.wait_subscribers(1)
                wait_values(port, macs, float(server.value), 20)

                def push():
                    pushed = server.push(per_plug, limit)
                    if pushed != total:
                        raise RuntimeError(f"pushed {pushed} changes, expected {total}")

                result[name] = drain(daemon, port, macs, per_plug, total,
                                     os.path.join(workdir, f"hass-{name}.log"), push, name,
                                     "hass", limit)
            finally:
                stop(daemon)
            server.wait_subscribers(0)
        client = start([sys.executable, os.path.join(HERE, "hass_bare_client.py"), server.url,
                        TOKEN, str(total)], os.path.join(workdir, "hass_bare_client.log"),
                       CONSUMER_CPU, stdout=subprocess.PIPE, env=twisted_env())
        try:
            lines = Lines(client)
            if lines.read(20) != "subscribed":
                raise RuntimeError("bare client did not subscribe")
            server.wait_subscribers(1)
            os.kill(client.pid, signal.SIGSTOP)
            pushed = server.push(per_plug, limit)
            t0 = time.time()
            os.kill(client.pid, signal.SIGCONT)
            t1 = float(lines.read(limit))
            cpu = wait_cpu_s(client, 20)
            if pushed < total:
                raise RuntimeError(f"pushed {pushed} < {total}")
            # CPU: its whole life, start-up and connecting included
            result["reference"] = {"per_s": total / (t1 - t0), "seconds": t1 - t0,
                                   "cpu_us_per_update": cpu * 1e6 / total}
        finally:
            stop(client)
    finally:
        server.stop()
    for name in daemons:
        result[name]["ratio"] = result[name]["per_s"] / result["reference"]["per_s"]
    return result


BENCHMARKS = {"mqtt": bench_mqtt, "hass": bench_hass}


def main(argv=None):
    parser = argparse.ArgumentParser(description="ingest benchmarks")
    parser.add_argument("which", nargs="*", default=list(BENCHMARKS))
    parser.add_argument("--plugs", type=int, default=20)
    parser.add_argument("--per-plug", type=int, help="updates per plug (K; default: the "
                                                      "benchmark's own)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, each side by side")
    parser.add_argument("--daemons", default="ours", help=f"from {', '.join(DAEMONS)}")
    parser.add_argument("--py-spy", help="path of py-spy: sample the --profile daemon's drain "
                                          "into PREFIX-<source>-<daemon>.txt")
    parser.add_argument("--profile", default="ours", help="which daemon to sample")
    parser.add_argument("--profile-prefix", default=os.path.join(HERE, "results", "ingest-profile"))
    args = parser.parse_args(argv)
    if args.py_spy:
        os.makedirs(os.path.dirname(args.profile_prefix), exist_ok=True)
        PROFILE.update(py_spy=args.py_spy, daemon=args.profile, out=args.profile_prefix)
    os.sched_setaffinity(0, {SERVER_CPU})
    daemons = args.daemons.split(",")
    extra = {"per_plug": args.per_plug} if args.per_plug else {}
    with tempfile.TemporaryDirectory(prefix="senselink-ingest-") as workdir:
        for name in args.which:
            ratios = {daemon: [] for daemon in daemons}
            for round_ in range(1, args.rounds + 1):
                result = BENCHMARKS[name](workdir, plugs=args.plugs, daemons=daemons, **extra)
                print(name, json.dumps(result), flush=True)
                for daemon in daemons:
                    ratios[daemon].append(result[daemon]["ratio"])
                    print(f"{name} round {round_}: {daemon} {result[daemon]['per_s']:,.0f}/s "
                          f"({result[daemon]['cpu_us_per_update']:.2f} µs CPU per update), "
                          f"reference {result['reference']['per_s']:,.0f}/s "
                          f"({result['reference']['cpu_us_per_update']:.2f} µs), "
                          f"ratio {result[daemon]['ratio']:.2f}", flush=True)
            for daemon, values in ratios.items():
                values.sort()
                print(f"{name}: {daemon} / reference ratio, median of {len(values)} round(s): "
                      f"{values[len(values) // 2]:.2f} (each: "
                      f"{', '.join(f'{v:.2f}' for v in values)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
