"""Profile our daemon under the closed-loop Sense load with cProfile (twistd --profile).

    python3 benchmarks/profile_server.py --plugs 200 --seconds 5 [--top 25]

Starts ``twistd --profile=... --profiler=cprofile --savestats senselink`` from
this checkout on a free loopback port (pinned to CPU 0), drives it with the
load generator's closed loop (pinned to CPU 1), stops it with SIGTERM (twistd
then writes the stats) and prints the functions with the most own time, and
the cumulative view, per Sense request.
"""

import argparse
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile

import run  # the benchmark's own module, next to this file


def print_samples(path, top):
    """Share of samples per function (own time) and per frame on the stack (inclusive)."""
    own, inclusive, total = {}, {}, 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            count = int(count)
            frames = stack.split(";")
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    for title, table in (("own", own), ("inclusive", inclusive)):
        print(f"\n--- py-spy: share of {total} samples, {title} ---")
        for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
            print(f"{100.0 * count / total:5.1f}%  {frame}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--py-spy", dest="py_spy", metavar="PY_SPY",
                        help="sample with this py-spy binary instead of cProfile "
                             "(e.g. benchmarks/.venvs/tools/bin/py-spy after "
                             "'pip install py-spy' there)")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {run.CLIENT_CPU})
    with tempfile.TemporaryDirectory(prefix="senselink-profile-") as workdir:
        paths = run.write_inputs(workdir, args.plugs)
        port = run.free_port()
        stats_path = os.path.join(workdir, "server.prof")
        profiling = [] if args.py_spy else ["--profile", stats_path, "--profiler", "cprofile",
                                            "--savestats"]
        argv_ = run.twistd_command(*profiling, "senselink", "-c", paths["yaml"],
                                   "-p", str(port), "--interface", "127.0.0.1")
        samples = os.path.join(workdir, "samples.txt")
        process, started = run.start_server(argv_, run.twisted_env(),
                                            os.path.join(workdir, "server.log"))
        try:
            with open(paths["expected"]) as f:
                checker = run.loadgen.ReplyChecker(json.load(f))
            run.wait_first_answer(process, checker, port, started)
            spy = None
            if args.py_spy:
                spy = subprocess.Popen([args.py_spy, "record", "--pid", str(process.pid),
                                        "--format", "raw", "--output", samples, "--rate", "500",
                                        "--duration", str(int(args.seconds)), "--nonblocking"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out = subprocess.run(
                [sys.executable, os.path.join(run.HERE, "loadgen.py"), "--port", str(port),
                 "--pid", str(process.pid), "--plugs", paths["expected"],
                 "--cpu", str(run.CLIENT_CPU), "--warmup", "0.2", "--closed", str(args.seconds),
                 "--open", "0"], capture_output=True, check=True, timeout=args.seconds + 60)
            result = json.loads(out.stdout)
            if spy is not None:
                spy.wait(args.seconds + 30)
        finally:
            run.stop_server(process)
        if args.py_spy:
            print_samples(samples, args.top)
            return 0
        requests = result["completed_total"]
        print(f"N={args.plugs}: {requests} Sense requests answered under the profiler "
              f"({result['server_cpu_ms_per_request']:.3f} ms CPU each with profiling overhead)")
        stats = pstats.Stats(stats_path, stream=io.StringIO())
        for order in ("tottime", "cumulative"):
            stream = io.StringIO()
            stats.stream = stream
            stats.sort_stats(order).print_stats(args.top)
            print(f"\n--- by {order} ---")
            print(stream.getvalue().split("ncalls", 1)[-1][:8000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
