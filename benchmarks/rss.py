"""Resident memory of our daemon next to a minimal Twisted UDP server, both started by twistd.

    python3 benchmarks/rss.py [--config examples/demo.yml] [--reps 3] [--settle 2]
    (also run by ``python3 benchmarks/run.py``, or ``--only rss``, about 1 minute)

Servers, each started the same way, ``python -c "from twisted.scripts.twistd
import run; run()" -n --pidfile= PLUGIN ...`` (what the ``twistd`` script
does), listening on 127.0.0.1 on a free port, pinned to CPU 0:

- ``twisted-udp``: the benchmark's minimal Twisted UDP server
  (``baseline/kasabaseline.py``, ``twistd kasabaseline --mode write``): a
  ``DatagramProtocol`` answering every datagram with K pre-built replies
  (K = ``--replies``, default 4: the plugs ``examples/demo.yml`` reports);
- ``senselink-twisted``: our daemon from this checkout, ``twistd senselink
  -c CONFIG -p PORT --interface 127.0.0.1``.

Both run from PYTHONPATH (this checkout, ``baseline/``), with the
interpreter of one of these environments:

- ``twisted-only``: a virtualenv with nothing but Twisted (the version this
  interpreter has), under ``benchmarks/.venvs/`` (created on first use);
- ``project``: the interpreter running this benchmark, with the project's
  requirements installed;
- ``project-no-tls``: a virtualenv with the project's requirements (same
  versions as this interpreter) less ``treq``, the one that requires
  ``Twisted[tls]`` and so pyOpenSSL and service_identity.

Why the environments matter: when pyOpenSSL is installed, *every* Twisted
reactor loads it at import (``twisted.internet.tcp`` -> ``_newtls`` ->
``twisted.protocols.tls`` -> ``OpenSSL`` -> ``cryptography``, and
``posixbase`` imports ``twisted.internet.ssl``), whatever the program does
with TLS. The column "cryptography mapped" says whether that happened
(``cryptography``'s Rust extension in ``/proc/PID/maps``).

For each server and environment: one start that is not measured (it writes
the ``.pyc`` files and Twisted's plugin cache; a start that compiles them
has a larger RSS), then ``--reps`` measured starts, interleaved: start,
wait for the first complete answer, wait ``--settle`` seconds, read
``VmRSS`` (and ``RssAnon``/``RssFile``) from ``/proc/PID/status``, send 200
Sense requests one after the other (each answer checked: decrypted, parsed,
one reply per reported plug, the same MACs and powers as the first answer),
read ``VmRSS`` again, stop the server by its PID. Medians are printed.
"""

import argparse
import ast
import importlib.metadata
import json
import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENVS = os.path.join(HERE, ".venvs")
sys.path.insert(0, HERE)

import loadgen  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1
DEMO_CONFIG = os.path.join(ROOT, "examples", "demo.yml")
REQUESTS = 200
BASELINE = "twisted-udp"
REFERENCE_ENV = "twisted-only"      # the baseline: a Twisted-only environment
ENVIRONMENTS = ["twisted-only", "project-no-tls", "project"]
# Requirements of the project that pull in pyOpenSSL (treq requires Twisted[tls]).
TLS_PULLERS = {"treq"}
ROWS = [  # (server, environment), in the order of the table
    ("twisted-udp", "twisted-only"),
    ("twisted-udp", "project-no-tls"),
    ("senselink-twisted", "project-no-tls"),
    ("twisted-udp", "project"),
    ("senselink-twisted", "project"),
]


# -- environments -------------------------------------------------------------

def _installed_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def project_requirements():
    """The install_requires of setup.py (read with ast, not run)."""
    with open(os.path.join(ROOT, "setup.py")) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return ast.literal_eval(node.value)
    raise RuntimeError("no install_requires in setup.py")


def _pinned(requirement):
    """C{name==version} of this interpreter when it has the package, else the requirement."""
    name = requirement
    for sep in "<>=!~[; ":
        name = name.split(sep)[0]
    version = _installed_version(name)
    return f"{name}=={version}" if version else requirement


def _base_name(requirement):
    for sep in "<>=!~[; ":
        requirement = requirement.split(sep)[0]
    return requirement.lower()


def environment_requirements(name):
    twisted = _installed_version("Twisted")
    if name == "twisted-only":
        return [f"Twisted=={twisted}" if twisted else "Twisted"]
    if name == "project-no-tls":
        return [_pinned(r) for r in project_requirements() if _base_name(r) not in TLS_PULLERS]
    raise KeyError(name)


def environment_python(name):
    """The interpreter of an environment; virtualenvs are created and filled on first use."""
    if name == "project":
        return sys.executable
    home = os.path.join(VENVS, name)
    python = os.path.join(home, "bin", "python")
    marker = os.path.join(home, ".installed")
    want = "\n".join(environment_requirements(name))
    if os.path.exists(marker) and open(marker).read() == want:
        return python
    print(f"creating {home} with {want.replace(chr(10), ', ')} ...", file=sys.stderr, flush=True)
    venv.create(home, with_pip=True, clear=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    *want.split("\n")], check=True)
    with open(marker, "w") as f:
        f.write(want)
    return python


def has_module(python, module):
    out = subprocess.run([python, "-c", f"import importlib.util, sys; "
                          f"sys.exit(importlib.util.find_spec({module!r}) is None)"])
    return out.returncode == 0


# -- one server -----------------------------------------------------------------

def free_port():
    import run
    return run.free_port()


def twistd_argv(python, *args):
    return [python, "-c", "from twisted.scripts.twistd import run; run()", "-n", "--pidfile=", *args]


def server_argv(server, python, port, config, replies):
    if server == "twisted-udp":
        return twistd_argv(python, "kasabaseline", "-r", replies, "-p", str(port),
                           "--interface", "127.0.0.1", "--mode", "write")
    if server == "senselink-twisted":
        return twistd_argv(python, "senselink", "-c", config, "-p", str(port),
                           "--interface", "127.0.0.1")
    raise KeyError(server)


def server_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [ROOT, os.path.join(HERE, "baseline")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def memory_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0])
    return out


def crypto_mapped(pid):
    """True when cryptography's extension (what pyOpenSSL uses) is mapped into the process."""
    with open(f"/proc/{pid}/maps") as f:
        return any("/cryptography/hazmat/bindings/" in line for line in f)


def _learn(sock, deadline):
    """The replies of one request: {mac: watts}, from every datagram until the deadline."""
    expected = {}
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        data = sock.recv(65536)
        reply = json.loads(loadgen.decrypt(data))
        sysinfo, realtime = reply["system"]["get_sysinfo"], reply["emeter"]["get_realtime"]
        expected[sysinfo["mac"].upper()] = realtime["power"]
    return expected


def first_answer(process, port, limit=30.0):
    """Wait until the server answers; returns its answer as {mac: watts}."""
    addr = ("127.0.0.1", port)
    sock = loadgen.udp_socket()
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before answering")
            sock.sendto(loadgen.REQUEST, addr)
            ready, _, _ = select.select([sock], [], [], 0.01)
            if ready:
                time.sleep(0.2)    # the rest of this answer; then drain it
                expected = _learn(sock, time.monotonic() + 0.2)
                if expected:
                    return expected
        raise RuntimeError("server did not answer in time")
    finally:
        sock.close()


def sense_requests(port, expected, count, timeout=1.0):
    """C{count} Sense requests one after the other, every answer checked; (bad, timeouts)."""
    checker = loadgen.ReplyChecker(expected)
    addr = ("127.0.0.1", port)
    sock = loadgen.udp_socket()
    bad = timeouts = 0
    try:
        for _ in range(count):
            request = loadgen.Request(time.monotonic())
            sock.sendto(loadgen.REQUEST, addr)
            deadline = request.sent + timeout
            while True:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([sock], [], [], max(0.0, left))
                if not ready:
                    timeouts += 1
                    break
                try:
                    if loadgen.add_reply(checker, request, sock.recv(65536)):
                        break
                except loadgen.BadReply:
                    bad += 1
                    break
    finally:
        sock.close()
    return bad, timeouts


def measure(server, python, config, replies, workdir, settle):
    """Start one server, read its memory settled and after REQUESTS requests, stop it."""
    import run
    port = free_port()
    log = open(os.path.join(workdir, f"{server}.log"), "ab")
    process = subprocess.Popen(server_argv(server, python, port, config, replies), env=server_env(),
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               preexec_fn=lambda: os.sched_setaffinity(0, {SERVER_CPU}),
                               cwd=workdir)
    log.close()
    try:
        expected = first_answer(process, port)
        time.sleep(settle)
        settled = memory_kib(process.pid)
        mapped = crypto_mapped(process.pid)
        bad, timeouts = sense_requests(port, expected, REQUESTS)
        after = memory_kib(process.pid)
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} during the run")
    finally:
        run.stop_server(process)
    return {"rss_kib": settled["VmRSS"], "anon_kib": settled["RssAnon"],
            "file_kib": settled["RssFile"], "rss_after_kib": after["VmRSS"],
            "crypto_mapped": mapped, "plugs": len(expected), "bad": bad, "timeouts": timeouts}


# -- the benchmark ------------------------------------------------------------------

def bench_rss(workdir, config=DEMO_CONFIG, reps=3, settle=2.0, replies=4, rows=ROWS):
    """{(server, environment): {medians..., "runs": [...]}} for the given rows."""
    import run
    paths = run.write_inputs(workdir, replies)
    pythons = {env: environment_python(env) for env in {env for _, env in rows}}
    tls = {env: has_module(python, "OpenSSL") for env, python in pythons.items()}
    for server, env in rows:    # not measured: .pyc files, plugin cache
        measure(server, pythons[env], config, paths["replies"], workdir, 0.0)
    runs = {}
    for rep in range(reps):
        order = rows[rep % len(rows):] + rows[:rep % len(rows)]
        for server, env in order:
            result = measure(server, pythons[env], config, paths["replies"], workdir, settle)
            runs.setdefault((server, env), []).append(result)
            print(f"rss rep {rep + 1}/{reps} {server} [{env}]: {result['rss_kib'] / 1024:.1f} MiB, "
                  f"after {REQUESTS} requests {result['rss_after_kib'] / 1024:.1f} MiB, "
                  f"{result['bad']} bad, {result['timeouts']} timeouts",
                  file=sys.stderr, flush=True)
    summary = {}
    for key, results in runs.items():
        row = {k: statistics.median(r[k] for r in results)
               for k in ("rss_kib", "anon_kib", "file_kib", "rss_after_kib")}
        row.update(growth_kib=statistics.median(r["rss_after_kib"] - r["rss_kib"] for r in results),
                   crypto_mapped=all(r["crypto_mapped"] for r in results),
                   crypto_mixed=len({r["crypto_mapped"] for r in results}) > 1,
                   pyopenssl_installed=tls[key[1]], plugs=results[0]["plugs"],
                   bad=sum(r["bad"] for r in results), timeouts=sum(r["timeouts"] for r in results),
                   runs=results)
        summary[key] = row
    return {"config": config, "reps": reps, "settle": settle, "requests": REQUESTS,
            "rows": summary}


def table(result):
    rows = result["rows"]
    reference = rows.get((BASELINE, REFERENCE_ENV))
    config = os.path.relpath(result["config"], ROOT)
    lines = [f"Config {config}; twistd-launched, medians of {result['reps']} starts; "
             f"RSS {result['settle']:g} s after the first answer and after "
             f"{result['requests']} Sense requests:\n",
             "| server | environment | pyOpenSSL installed | cryptography mapped | RSS MiB "
             "| anon / file MiB | RSS MiB after requests | growth KiB "
             f"| vs {BASELINE}, same environment | vs {BASELINE}, {REFERENCE_ENV} | errors |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (server, env), row in rows.items():
        base = rows.get((BASELINE, env))
        same = "-" if server == BASELINE or base is None else f"{row['rss_kib'] / base['rss_kib']:.2f}x"
        ref = ("-" if reference is None or (server, env) == (BASELINE, REFERENCE_ENV)
               else f"{row['rss_kib'] / reference['rss_kib']:.2f}x")
        mapped = "mixed" if row["crypto_mixed"] else ("yes" if row["crypto_mapped"] else "no")
        lines.append(
            f"| {server} | {env} | {'yes' if row['pyopenssl_installed'] else 'no'} | {mapped} | "
            f"{row['rss_kib'] / 1024:.1f} | {row['anon_kib'] / 1024:.1f} / {row['file_kib'] / 1024:.1f} | "
            f"{row['rss_after_kib'] / 1024:.1f} | {row['growth_kib']:.0f} | {same} | {ref} | "
            f"{row['bad']} bad, {row['timeouts']} timeouts |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="RSS of our daemon next to a minimal twistd UDP server")
    parser.add_argument("--config", default=DEMO_CONFIG, help="our daemon's config (default: the demo)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds between the first answer and the RSS reading")
    parser.add_argument("--replies", type=int, default=4,
                        help="replies per request of the minimal server (default: the demo's 4)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {CLIENT_CPU})
    with tempfile.TemporaryDirectory(prefix="senselink-rss-") as workdir:
        result = bench_rss(workdir, os.path.abspath(args.config), args.reps, args.settle,
                           args.replies)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
