"""Kasa responder benchmark: SenseLink on Twisted side by side with its peers.

    python3 benchmarks/run.py            # full: 5 interleaved repetitions (about 25 min)
    python3 benchmarks/run.py --quick    # 1 repetition, short phases (about 2 min)
    python3 benchmarks/run.py --only rss # memory only (about 1 min): rss.py's table

Creates virtualenvs under benchmarks/.venvs with the peers from PyPI
(senselink==2.2.1, sense_energy==0.15.0), then for each repetition, each N
(plugs answered per request) and each server in turn: starts the server
pinned to CPU 0 on a free loopback port, measures start-up (process start to
the first completely answered request), runs the load generator
(benchmarks/loadgen.py, pinned to CPU 1: closed loop, open loop at 2 req/s,
RSS), stops the server by its PID, and finally prints a Markdown table of
medians with ratios against the minimal Twisted ``transport.write`` server.
The memory part (``rss.py``) compares resident memory with the demo config
against the minimal twistd UDP server, in this interpreter and in
virtualenvs with Twisted only and with the project less its TLS stack.

The Twisted servers (ours and the baselines) run with this interpreter, which
needs the project's requirements (Twisted) installed; ours runs from this
checkout through PYTHONPATH.
"""

import argparse
import json
import os
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENVS = os.path.join(HERE, ".venvs")
RESULTS = os.path.join(HERE, "results")
sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)

import loadgen  # noqa: E402  (the benchmark's own module, next to this file)

SERVER_CPU = 0
CLIENT_CPU = 1
BASELINE = "twisted-write"

PEERS = {
    # venv name: pip requirement
    "original": "senselink==2.2.1",
    "sense_energy": "sense_energy==0.15.0",
}


# -- setup ------------------------------------------------------------------

def peer_python(name):
    """The interpreter of the peer's virtualenv, created and filled on first use."""
    home = os.path.join(VENVS, name)
    python = os.path.join(home, "bin", "python")
    marker = os.path.join(home, ".installed")
    want = PEERS[name]
    if os.path.exists(marker) and open(marker).read() == want:
        return python
    print(f"creating {home} with {want} ...", file=sys.stderr)
    venv.create(home, with_pip=True, clear=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", want],
                   check=True)
    with open(marker, "w") as f:
        f.write(want)
    return python


def make_plugs(n, elements=0):
    """The reported plugs (plug id, alias, MAC, watts) and the aggregate elements.

    With C{elements}, the last reported plug is an aggregate of that many
    static elements of 1 W each (not answered themselves): the aggregate
    reports C{elements} W.
    """
    plugs = [(f"plug{i:03d}", f"Bench Plug {i}", f"53:75:31:BE:{i // 256:02X}:{i % 256:02X}",
              float(10 + i)) for i in range(n)]
    members = []
    if elements:
        plug_id, alias, mac, _ = plugs[-1]
        plugs[-1] = (plug_id, alias, mac, float(elements))
        members = [(f"element{i:04d}", f"Element {i}", f"53:75:31:EE:{i // 256:02X}:{i % 256:02X}",
                    1.0) for i in range(elements)]
    return plugs, members


def write_inputs(workdir, n, elements=0):
    """Config files for every server, for N plugs; returns their paths."""
    plugs, members = make_plugs(n, elements)
    statics = plugs[:-1] + members if members else plugs
    paths = {name: os.path.join(workdir, f"{name}-{n}-{elements}{ext}") for name, ext in
             [("yaml", ".yml"), ("json", ".json"), ("expected", ".expected.json"),
              ("replies", ".replies.bin")]}
    with open(paths["yaml"], "w") as f:
        f.write("sources:\n  - static:\n      plugs:\n")
        for plug_id, alias, mac, watts in statics:
            f.write(f"        - {plug_id}:\n            alias: \"{alias}\"\n"
                    f"            mac: {mac}\n            max_watts: {watts}\n")
        if members:
            plug_id, alias, mac, _ = plugs[-1]
            f.write(f"  - aggregate:\n      plugs:\n        - {plug_id}:\n"
                    f"            alias: \"{alias}\"\n            mac: {mac}\n"
                    f"            elements:\n")
            for element_id, _, _, _ in members:
                f.write(f"              - {element_id}\n")
    # sense_energy has no aggregates: it gets the reported plugs with their power.
    with open(paths["json"], "w") as f:
        json.dump([{"alias": alias, "mac": mac, "watts": watts}
                   for _, alias, mac, watts in plugs], f)
    with open(paths["expected"], "w") as f:
        json.dump({mac: watts for _, _, mac, watts in plugs}, f)
    # The baselines send the replies our daemon would send, pre-encrypted.
    from senselink.kasa import cipher, messages
    from senselink.plugs import derive_device_id
    with open(paths["replies"], "wb") as f:
        for _, alias, mac, watts in plugs:
            reply = messages.encode(messages.sense_reply(
                alias=alias, mac=mac, device_id=derive_device_id(mac), power=watts,
                voltage=120.0, on=True))
            f.write(cipher.frame(reply))
    return paths


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP (our daemon listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


def twistd_command(*args, python=None):
    return [python or sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "-n", "--pidfile=", *args]


def twisted_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(HERE, "baseline")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def server_commands(paths, port, names=None, interface="127.0.0.1"):
    """name -> (argv, env) for each server (C{names}: only these, when given; the Twisted
    ones listening on C{interface})."""
    tenv = twisted_env()
    baseline = ["kasabaseline", "-r", paths["replies"], "-p", str(port), "--interface", interface]
    if names is not None and "twisted-write-bare" in names:
        import rss
        return {"twisted-write-bare": (twistd_command(
            *baseline, "--mode", "write", python=rss.environment_python("twisted-only")), tenv)}
    return {
        "original": ([peer_python("original"), os.path.join(HERE, "peers", "original_senselink.py"),
                      paths["yaml"], str(port)], None),
        "sense_energy": ([peer_python("sense_energy"),
                          os.path.join(HERE, "peers", "sense_energy_link.py"),
                          paths["json"], str(port)], None),
        "twisted-write": (twistd_command(*baseline, "--mode", "write"), tenv),
        "twisted-sendto": (twistd_command(*baseline, "--mode", "sendto"), tenv),
        "senselink-twisted": (twistd_command("senselink", "-c", paths["yaml"], "-p", str(port),
                                             "--interface", interface), tenv),
        # Another checkout of this project (SENSELINK_BEFORE=its root), e.g. the code
        # before a change, measured side by side with this one.
        **({"senselink-before": (
            twistd_command("senselink", "-c", paths["yaml"], "-p", str(port), "--interface",
                           interface),
            {**tenv, "PYTHONPATH": os.pathsep.join([os.environ["SENSELINK_BEFORE"],
                                                    tenv["PYTHONPATH"]])})}
           if os.environ.get("SENSELINK_BEFORE") else {}),
    }


SERVERS = ["original", "sense_energy", "twisted-write", "twisted-sendto", "senselink-twisted"]
# Servers outside the default run: twisted-write-bare is twisted-write run by a
# virtualenv with nothing but Twisted (rss.py's "twisted-only": no pyOpenSSL, so
# its reactor does not load OpenSSL), the environment of the memory issue's baseline.
EXPERIMENTS = ["twisted-write-bare", "senselink-before"]


# -- one server run ---------------------------------------------------------

def _pin_server():
    os.sched_setaffinity(0, {SERVER_CPU})


def start_server(argv, env, log_path):
    log = open(log_path, "ab")
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, preexec_fn=_pin_server, cwd=HERE)
    log.close()
    return process, started


def wait_first_answer(process, checker, port, started, limit=30.0):
    """Seconds from process start to the first correct reply datagram.

    Probes with the Sense request every 5 ms; the first reply that passes
    the checker means the server is up and answering.
    """
    addr = ("127.0.0.1", port)
    sock = loadgen.udp_socket()
    try:
        while time.perf_counter() - started < limit:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before answering")
            sock.sendto(loadgen.REQUEST, addr)
            ready, _, _ = select.select([sock], [], [], 0.005)
            if ready:
                checker.check(sock.recv(65536))  # raises BadReply for a wrong reply
                return time.perf_counter() - started
        raise RuntimeError("server did not answer in time")
    finally:
        sock.close()


def stop_server(process):
    """Stop the server we started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def bench_kasa_server(name, argv, env, paths, port, phases, workdir):
    """Start one server, measure start-up, run the load generator, stop it."""
    with open(paths["expected"]) as f:
        checker = loadgen.ReplyChecker(json.load(f))
    process, started = start_server(argv, env, os.path.join(workdir, f"{name}.log"))
    try:
        startup = wait_first_answer(process, checker, port, started)
        out = subprocess.run(
            [sys.executable, os.path.join(HERE, "loadgen.py"), "--port", str(port),
             "--pid", str(process.pid), "--plugs", paths["expected"], "--cpu", str(CLIENT_CPU),
             "--warmup", str(phases["warmup"]), "--closed", str(phases["closed"]),
             "--open", str(phases["open"])],
            capture_output=True, check=True, timeout=phases["warmup"] + phases["closed"]
            + phases["open"] + 60)
        result = json.loads(out.stdout)
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} during the run")
    finally:
        stop_server(process)
    result["startup_ms"] = startup * 1000.0
    return result


# -- ingest benchmarks --------------------------------------------------------
#
# ingest.py (MQTT through a real mosquitto against mosquitto_sub; Home
# Assistant subscribe_entities events from the tests' fake server against a
# bare Autobahn client) and changes.py (CPU per Sense request when K of N
# plugs changed since the last one). Each entry: (rounds, phases, workdir,
# options) -> result; main() runs them after the Kasa servers (or alone with
# --only) and prints them in their own tables.

INGEST_DAEMONS = ["ours"]


def _ingest_rounds(bench, rounds, workdir, options):
    results = []
    for rnd in range(rounds):
        result = bench(workdir, plugs=options["ingest_plugs"], daemons=options["ingest_daemons"])
        print(f"ingest round {rnd + 1}/{rounds} {bench.__name__}: " + ", ".join(
            f"{name} {result[name]['per_s']:,.0f}/s" for name in
            list(options["ingest_daemons"]) + ["reference"]), file=sys.stderr, flush=True)
        results.append(result)
    summary = {"plugs": results[0]["plugs"], "messages": results[0]["messages"],
               "rounds": results, "daemons": list(options["ingest_daemons"])}
    for name in list(options["ingest_daemons"]) + ["reference"]:
        summary[name] = {key: median([r[name].get(key) for r in results])
                         for key in ("per_s", "cpu_us_per_update", "log_bytes", "rss_growth_kib")}
    for name in options["ingest_daemons"]:
        summary[name]["ratio"] = median([r[name]["ratio"] for r in results])
    summary["extra"] = {k: [r[k] for r in results] for k in results[0]
                        if k not in ("plugs", "messages", "reference", *options["ingest_daemons"])}
    return summary


def bench_ingest_mqtt(rounds, phases, workdir, options):
    import ingest
    return _ingest_rounds(ingest.bench_mqtt, rounds, workdir, options)


def bench_ingest_hass(rounds, phases, workdir, options):
    import ingest
    return _ingest_rounds(ingest.bench_hass, rounds, workdir, options)


def bench_rss(rounds, phases, workdir, options):
    import rss
    return rss.bench_rss(workdir, config=options["rss_config"], reps=options["rss_reps"],
                         settle=phases["settle"])


def bench_changes(rounds, phases, workdir, options):
    import changes
    return changes.bench_changes(workdir, options["ns"], seconds=phases["changes"], reps=rounds)


INGEST_BENCHMARKS = {"mqtt": bench_ingest_mqtt, "hass": bench_ingest_hass}
CHANGE_BENCHMARKS = {"changes": bench_changes}

REFERENCES = {"mqtt": "mosquitto_sub (C)", "hass": "bare Autobahn client (json.loads only)"}


def ingest_table(results):
    lines = ["| source | consumer | updates/s | ratio to reference | consumer CPU µs/update "
             "| daemon log written | rounds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        for who in r["daemons"] + ["reference"]:
            row = r[who]
            label = REFERENCES[name] if who == "reference" else who
            ratio = f"{row['ratio']:.2f}" if who != "reference" else "1"
            log_bytes = "-" if row.get("log_bytes") is None else f"{row['log_bytes'] / 1024:,.0f} KiB"
            lines.append(f"| {name} ({r['plugs']} plugs, {r['messages']:,} updates) | {label} | "
                         f"{row['per_s']:,.0f} | {ratio} | {row['cpu_us_per_update']:.1f} | "
                         f"{log_bytes} | {len(r['rounds'])} |")
    return "\n".join(lines) + "\n"


# -- report ------------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(runs):
    """runs: {(server, n): [result, ...]} -> {(server, n): medians}."""
    summary = {}
    for key, results in runs.items():
        latencies = [x for r in results for x in r["latencies_ms"]]
        summary[key] = {
            "cpu_ms": median([r.get("server_cpu_ms_per_request") for r in results]),
            "rps": median([r["requests_per_s"] for r in results]),
            "client_cpu": median([r["client_cpu_fraction"] for r in results]),
            "server_cpu": median([r.get("server_cpu_fraction") for r in results]),
            "other_cpu": median([r.get("other_cpu_fraction") for r in results]),
            "p50_ms": median([r["p50_ms"] for r in results]),
            "p99_ms": loadgen.percentile(latencies, 99) if latencies else None,
            "rss_mib": median([r["rss_kib_warm"] / 1024 for r in results]),
            "rss_growth_kib": median([r["rss_kib_after"] - r["rss_kib_warm"] for r in results]),
            "startup_ms": median([r["startup_ms"] for r in results]),
            "bad": sum(r["bad_replies"] for r in results),
            "timeouts": sum(r["timeouts"] for r in results),
            "reps": len(results),
            "samples": len(latencies),
        }
    return summary


def _fmt(value, digits):
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _cell(summary, server, n, key, digits):
    row = summary.get((server, n))
    base = summary.get((BASELINE, n))
    if row is None or row[key] is None:
        return "-"
    text = _fmt(row[key], digits)
    if base is not None and base[key] and server != BASELINE:
        text += f" ({row[key] / base[key]:.2f}x)"
    return text


def table(summary, ns, servers):
    lines = []
    for n in ns:
        lines.append(f"N = {n} plugs per request (ratios against {BASELINE}):\n")
        lines.append("| server | CPU ms/request | requests/s | latency p50 ms | latency p99 ms "
                     "| RSS MiB | RSS growth KiB | start-up ms | CPU server/client/other | errors |")
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for server in servers:
            row = summary.get((server, n))
            if row is None:
                continue
            lines.append(" | ".join([
                f"| {server}",
                _cell(summary, server, n, "cpu_ms", 3),
                _cell(summary, server, n, "rps", 0),
                _cell(summary, server, n, "p50_ms", 3),
                _cell(summary, server, n, "p99_ms", 3),
                _cell(summary, server, n, "rss_mib", 1),
                _fmt(row["rss_growth_kib"], 0),
                _cell(summary, server, n, "startup_ms", 0),
                f"{row['server_cpu'] * 100:.0f}/{row['client_cpu'] * 100:.0f}/"
                f"{row['other_cpu'] * 100:.0f}%",
                f"{row['bad']} bad, {row['timeouts']} timeouts |",
            ]))
        lines.append("")
    return "\n".join(lines)


# -- main --------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description="Kasa responder benchmark")
    parser.add_argument("--quick", action="store_true",
                        help="1 repetition, short phases (development)")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, quick 1)")
    parser.add_argument("--plugs", default="20,200", help="comma-separated N values")
    parser.add_argument("--elements", type=int, default=0,
                        help="make the last reported plug an aggregate of this many "
                             "elements (plugs not answered)")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help=f"comma-separated, from {', '.join(SERVERS + EXPERIMENTS)}")
    parser.add_argument("--interface", default="127.0.0.1",
                        help="address the Twisted servers listen on; 0.0.0.0 measures the "
                             "wildcard path, where each reply leaves from the address asked")
    parser.add_argument("--closed", type=float, help="closed-loop seconds (default 5, quick 2)")
    parser.add_argument("--open", type=float, help="open-loop seconds at 2 req/s (default 20, quick 5)")
    parser.add_argument("--only", choices=["kasa", "ingest", "changes", "rss"], action="append",
                        help="run only these parts (repeatable; default: all): the Kasa servers, "
                             "the MQTT and Home Assistant ingest benchmarks, the changes "
                             "between requests, resident memory against a minimal twistd "
                             "UDP server (rss)")
    parser.add_argument("--rss-config", default=None,
                        help="our daemon's config for the rss part (default examples/demo.yml)")
    parser.add_argument("--ingest-plugs", type=int, default=20,
                        help="plugs (topics, entities) of the ingest benchmarks")
    parser.add_argument("--ingest-daemons", default=",".join(INGEST_DAEMONS),
                        help="daemons measured by the ingest benchmarks (ingest.DAEMONS: ours)")
    args = parser.parse_args(argv)
    parts = set(args.only or ["kasa", "ingest", "changes", "rss"])
    if len(os.sched_getaffinity(0)) < 2 or os.cpu_count() < 2:
        sys.exit("the benchmark needs 2 CPUs (server and load generator pinned apart)")
    os.sched_setaffinity(0, {CLIENT_CPU})
    # SIGTERM unwinds like ^C, so the server being measured is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    reps = args.reps or (1 if args.quick else 5)
    phases = {"warmup": 0.5 if args.quick else 1.0,
              "closed": args.closed or (2.0 if args.quick else 5.0),
              "open": args.open or (5.0 if args.quick else 20.0),
              "changes": 1.0 if args.quick else 3.0,
              "settle": 1.0 if args.quick else 2.0}
    ns = [int(n) for n in args.plugs.split(",")]
    servers = [s for s in args.servers.split(",") if s]
    unknown = set(servers) - set(SERVERS) - set(EXPERIMENTS)
    if unknown:
        sys.exit(f"unknown servers: {', '.join(sorted(unknown))}")

    runs = {}
    with tempfile.TemporaryDirectory(prefix="senselink-bench-") as workdir:
        inputs = {n: write_inputs(workdir, n, args.elements) for n in ns}
        for rep in range(reps if "kasa" in parts else 0):
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for n in ns:
                for name in order:
                    port = free_port()
                    argv_, env = server_commands(inputs[n], port, [name], args.interface)[name]
                    result = bench_kasa_server(name, argv_, env, inputs[n], port, phases, workdir)
                    runs.setdefault((name, n), []).append(result)
                    print(f"rep {rep + 1}/{reps} N={n} {name}: "
                          f"{result.get('server_cpu_ms_per_request') or 0:.3f} ms/req, "
                          f"{result['requests_per_s']:.0f} req/s, p50 {result['p50_ms']} ms, "
                          f"start {result['startup_ms']:.0f} ms, "
                          f"{result['bad_replies']} bad, {result['timeouts']} timeouts",
                          file=sys.stderr, flush=True)
        options = {"ns": ns, "ingest_plugs": args.ingest_plugs,
                   "ingest_daemons": [d for d in args.ingest_daemons.split(",") if d],
                   "rss_config": os.path.abspath(args.rss_config or os.path.join(
                       ROOT, "examples", "demo.yml")),
                   "rss_reps": args.reps or (1 if args.quick else 3)}
        ingest_results = {}
        if "ingest" in parts:
            for name, bench in INGEST_BENCHMARKS.items():
                ingest_results[name] = bench(reps, phases, workdir, options)
        change_results = None
        if "changes" in parts:
            change_results = CHANGE_BENCHMARKS["changes"](reps, phases, workdir, options)
        rss_result = None
        if "rss" in parts:
            rss_result = bench_rss(reps, phases, workdir, options)

    summary = summarize(runs)
    text = table(summary, ns, servers) if runs else ""
    if args.elements and runs:
        text = (f"The last reported plug is an aggregate of {args.elements} elements "
                f"(not answered).\n\n" + text)
    if ingest_results:
        text += ("\nIngest: updates applied per second, drained from a backlog "
                 "(ratio: ours / the reference consumer, same server, same run):\n\n"
                 + ingest_table(ingest_results))
    if change_results:
        import changes
        text += ("\nChanges between Sense requests (our daemon; CPU per request = "
                 "CPU(changes + poll) - CPU(changes)):\n\n" + changes.table(change_results))
    if rss_result:
        import rss
        text += ("\nResident memory (VmRSS) against the minimal twistd UDP server:\n\n"
                 + rss.table(rss_result))
    print(text)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    with open(os.path.join(RESULTS, f"kasa-{stamp}.json"), "w") as f:
        json.dump({"phases": phases, "reps": reps,
                   "runs": {f"{s}/{n}": r for (s, n), r in runs.items()},
                   "ingest": ingest_results, "changes": change_results,
                   "rss": None if rss_result is None else {
                       "config": rss_result["config"], "reps": rss_result["reps"],
                       "rows": {f"{s}/{e}": r for (s, e), r in rss_result["rows"].items()}}}, f)
    with open(os.path.join(RESULTS, f"kasa-{stamp}.md"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
