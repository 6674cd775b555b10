"""The daemon as users start it, in subprocesses: twistd, python -m senselink, probes."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

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


class DaemonProcess:
    def __init__(self, testcase, args):
        env = {**os.environ, "PYTHONPATH": ROOT}
        self.process = subprocess.Popen(args, cwd=testcase.mktemp_dir(), env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        testcase.addCleanup(self.stop)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.stdout.read()


class Case(unittest.TestCase):
    def mktemp_dir(self):
        path = os.path.abspath(self.mktemp())
        os.makedirs(path)
        return path

    def run_quick(self, args, timeout=60):
        env = {**os.environ, "PYTHONPATH": ROOT}
        return subprocess.run(args, cwd=self.mktemp_dir(), env=env, capture_output=True,
                              text=True, timeout=timeout)
