"""A web flood against the daemon as users run it, under a low descriptor limit.

The daemon runs under twistd with C{ulimit -n 300}. The test opens 400
connections to its web port that never finish their headers, then checks
that what the daemon exists for keeps working: Kasa TCP answers, and the
state file is written at SIGTERM.
"""

import json
import os
import select
import shlex
import socket
import time

from senselink.kasa import cipher
from tests.processes import Case, DaemonProcess, sense_replies, twistd
from tests.support import LOOPBACK, WAIT, free_port

CONFIG = """\
web:
  listen: tcp:{web}:interface=127.0.0.1
state_file: {state}
sources:
- static:
    plugs:
    - a: {{mac: "53:75:31:00:00:01", max_watts: 10}}
"""

FLOOD = 400


def kasa_tcp_reply(port):
    """The Kasa reply to a sysinfo request over TCP, or the error met."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=WAIT) as s:
            s.sendall(cipher.frame(cipher.encrypt(b'{"system":{"get_sysinfo":{}}}')))
            data = b""
            while len(data) < 4 or len(data) < 4 + cipher.frame_length(data[:4]):
                chunk = s.recv(65536)
                if not chunk:
                    return "closed"
                data += chunk
        return json.loads(cipher.decrypt(data[4:]))
    except OSError as e:
        return repr(e)


def wait_for_closes(sockets):
    """How many of C{sockets} the daemon keeps open, once the others have closed
    (bounded by L{WAIT} seconds; a bound, not a measurement)."""
    poll = select.poll()
    for s in sockets:
        poll.register(s, select.POLLIN)
    deadline = time.monotonic() + WAIT
    while True:
        readable = poll.poll(100)
        held = len(sockets) - len(readable)      # read side at EOF: closed by the daemon
        if held <= 14 or time.monotonic() > deadline:
            return held


class DescriptorFloodTests(Case):

    def test_a_web_flood_leaves_kasa_tcp_and_the_state_file_working(self):
        directory = self.mktemp_dir()
        state = os.path.join(directory, "energy.json")
        config = os.path.join(directory, "senselink.yml")
        port, web = free_port(), free_port()
        with open(config, "w") as f:
            f.write(CONFIG.format(web=web, state=state))
        command = [twistd(), "-n", "--pidfile=", "senselink", "-c", config, "--port", str(port),
                   "--interface", LOOPBACK]
        daemon = DaemonProcess(self, ["sh", "-c", "ulimit -n 300 && exec "
                                      + " ".join(map(shlex.quote, command))])
        sense_replies(port, 1)                          # it is up
        flood = []
        self.addCleanup(lambda: [s.close() for s in flood])
        for _ in range(FLOOD):
            s = socket.socket()
            s.settimeout(WAIT)
            try:
                s.connect((LOOPBACK, web))
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")     # headers never finished
            except OSError:
                pass
            flood.append(s)
        self.assertIn("system", kasa_tcp_reply(port))
        sense_replies(port, 1)
        # The flood holds only what the cap allows; the rest were closed at once.
        self.assertLessEqual(wait_for_closes(flood), 14)      # (300 - 256) // 3
        for s in flood:
            s.close()
        output = daemon.stop()
        self.assertNotIn("Too many open files", output)
        with open(state, encoding="utf-8") as f:
            self.assertIn('"a"', f.read())
