"""The daemon as users start it, in subprocesses: twistd, python -m senselink, probes."""

import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

from twisted.trial import unittest

from senselink.kasa import cipher, messages
from tests.support import LOOPBACK

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "examples", "demo.yml")


def twistd():
    local = os.path.join(os.path.dirname(sys.executable), "twistd")
    return local if os.path.exists(local) else shutil.which("twistd")


def sense_replies(port, expected, attempts=100):
    """Send Sense requests until C{expected} replies arrive (bounded by C{attempts})."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        for _ in range(attempts):
            s.sendto(messages.SENSE_REQUEST_ENCRYPTED, (LOOPBACK, port))
            replies = []
            try:
                while len(replies) < expected:
                    replies.append(json.loads(cipher.decrypt(s.recv(4096))))
                return replies
            except socket.timeout:
                continue
    raise AssertionError(f"no {expected} replies from port {port}")


def limit_memory(size=1 << 30):
    """A C{preexec_fn}: the child may map at most C{size} bytes, so that a bug that reads
    without bound fails at once instead of filling the machine's memory."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    return limit


class DaemonProcess:
    def __init__(self, testcase, args, **popen):
        env = {**os.environ, "PYTHONPATH": ROOT}
        self.process = subprocess.Popen(args, cwd=testcase.mktemp_dir(), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        **popen)
        self.seen = ""      # output read by wait_for
        testcase.addCleanup(self.stop)

    def wait_for(self, text, timeout=20):
        """Read the output until C{text} appears in it; AssertionError after C{timeout} s."""
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()     # read below the text buffer: select sees it all
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no {text!r} in {timeout} s; output so far:\n{self.seen}")
            data = os.read(fd, 65536)
            if not data:
                raise AssertionError(f"the daemon ended before {text!r}:\n{self.seen}")
            self.seen += data.decode("utf-8", "replace")
        return self.seen

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.seen + self.process.stdout.read()


class Case(unittest.TestCase):
    def mktemp_dir(self):
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    def start_senselink(self, config, port, ready):
        """C{python -m senselink -c config}, answering Kasa on 127.0.0.1:C{port}, once its
        output holds C{ready} (its memory bounded: L{limit_memory})."""
        daemon = DaemonProcess(self, [sys.executable, "-m", "senselink", "-c", config,
                                      "-p", str(port), "--interface", LOOPBACK],
                               preexec_fn=limit_memory())
        daemon.wait_for(ready)
        return daemon

    def stop(self, daemon):
        """SIGTERM, as systemd stops it: exit 0 and no traceback; its output."""
        daemon.process.send_signal(signal.SIGTERM)
        self.assertEqual(daemon.process.wait(timeout=20), 0)
        output = daemon.stop()
        self.assertNotIn("Traceback", output)
        return output

    def run_quick(self, args, timeout=60, **popen):
        env = {**os.environ, "PYTHONPATH": ROOT}
        return subprocess.run(args, cwd=self.mktemp_dir(), env=env, capture_output=True,
                              text=True, timeout=timeout, **popen)
