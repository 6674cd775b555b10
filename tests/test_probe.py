"""The probe (python -m senselink probe), against loopback targets only."""

import io
import json
import socket
import subprocess
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python import usage
from twisted.trial import unittest

import senselink
from senselink import probe as _probe
from senselink.config import load_text
from senselink.kasa import cipher, messages
from senselink.service import makeService
from tests.deploy_support import ROOT, WAIT, child_env, spawn, with_timeout
from tests.support import has_ipv6_loopback

CONFIG = """\
sources:
  - static:
      plugs:
        - NAS:
            alias: "NAS Server"
            mac: 53:75:31:F6:4C:01
            max_watts: 15
        - Fan:
            alias: "Ceiling Fan"
            mac: 53:75:31:F6:4C:02
            max_watts: 40.5
"""


class SilentListener(DatagramProtocol):
    """Receives datagrams and never answers (a host without SenseLink)."""

    def __init__(self):
        self.received = defer.Deferred()

    def datagramReceived(self, data, addr):
        if not self.received.called:
            self.received.callback(data)


class FakePlugs(DatagramProtocol):
    """Answers each request with the given raw datagrams (to test the warnings);
    C{answered} fires once the first answers are sent."""

    def __init__(self, datagrams):
        self.datagrams = datagrams
        self.answered = defer.Deferred()

    def datagramReceived(self, data, addr):
        for datagram in self.datagrams:
            self.transport.write(datagram, addr)
        if not self.answered.called:
            self.answered.callback(None)


def fake_reply(alias, mac, model=messages.HS110_MODEL, power=10.0):
    reply = messages.sense_reply(alias=alias, mac=mac, device_id="AB" * 20, power=power,
                                 voltage=120.0, on=True)
    reply["system"]["get_sysinfo"]["model"] = model
    return messages.encode(reply)


class ProbeTests(unittest.TestCase):

    def start_daemon(self, config=CONFIG, interface="127.0.0.1"):
        service = makeService(load_text(config, "probe.yml"), port=0, interface=interface)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        return service

    def listen(self, proto):
        port = reactor.listenUDP(0, proto, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def test_lists_the_daemons_plugs(self):
        service = self.start_daemon()
        result = yield _probe.probe(reactor, "127.0.0.1", service.udp_port, timeout=WAIT, count=2)
        got = sorted((a.alias, a.mac, a.watts, a.model, a.host, a.port) for a in result.answers)
        self.assertEqual(got, [
            ("Ceiling Fan", "53:75:31:F6:4C:02", 40.5, "HS110(US)", "127.0.0.1", service.udp_port),
            ("NAS Server", "53:75:31:F6:4C:01", 15.0, "HS110(US)", "127.0.0.1", service.udp_port),
        ])
        self.assertEqual(result.warnings(), [])
        out = io.StringIO()
        self.assertEqual(_probe.report(result, out), 0)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0].split(), ["ALIAS", "MAC", "WATTS", "MODEL", "FROM"])
        self.assertIn(f"53:75:31:F6:4C:01  15.0   HS110(US)  127.0.0.1:{service.udp_port}",
                      out.getvalue())
        self.assertIn(f"2 plug(s) answered the Sense request to 127.0.0.1:{service.udp_port}",
                      out.getvalue())

    @defer.inlineCallbacks
    def test_no_answer_sends_the_sense_request_and_exits_1(self):
        silent = SilentListener()
        port = self.listen(silent)
        clock = Clock()
        probing = _probe.probe(reactor, "127.0.0.1", port, timeout=3, clock=clock)
        request = yield with_timeout(silent.received)
        self.assertEqual(request, messages.SENSE_REQUEST_ENCRYPTED)
        self.assertEqual(cipher.decrypt(request), messages.SENSE_REQUEST)
        self.assertFalse(probing.called)
        clock.advance(3)
        result = yield probing
        self.assertEqual(result.answers, [])
        out = io.StringIO()
        self.assertEqual(_probe.report(result, out), 1)
        self.assertIn(f"No plug answered the Sense request to 127.0.0.1:{port} within 3 s",
                      out.getvalue())

    @defer.inlineCallbacks
    def test_warnings(self):
        datagrams = [b"\x00garbage"]
        datagrams.append(fake_reply("Twin A", "50:C7:BF:00:00:01"))
        datagrams.append(fake_reply("Twin B", "50:C7:BF:00:00:01"))
        datagrams.append(fake_reply("Odd", "50:C7:BF:00:00:02", model="SenseLink"))
        datagrams += [fake_reply(f"P{i}", f"50:C7:BF:00:01:{i:02X}") for i in range(18)]
        port = self.listen(FakePlugs(datagrams))
        result = yield _probe.probe(reactor, "127.0.0.1", port, timeout=WAIT, count=21)
        warnings = result.warnings()
        self.assertEqual(len(result.answers), 21)
        self.assertEqual(len(warnings), 4, warnings)
        self.assertTrue(warnings[0].startswith("duplicate MAC 50:C7:BF:00:00:01: 2 answers "
                                               "('Twin A' from 127.0.0.1:"), warnings)
        self.assertIn("reports model 'SenseLink'; Sense only accepts 'HS110(US)'", warnings[1])
        self.assertEqual(warnings[2], "21 plugs answered; Sense shows about 20 at most")
        self.assertTrue(warnings[3].startswith("unreadable reply from 127.0.0.1:"))
        out = io.StringIO()
        self.assertEqual(_probe.report(result, out), 0)
        self.assertEqual(out.getvalue().count("warning: "), 4)

    def test_parse_answer_power_mw(self):
        reply = {"system": {"get_sysinfo": {"alias": "x", "mac": "aa:bb:cc:dd:ee:ff",
                                            "model": "HS110(EU)"}},
                 "emeter": {"get_realtime": {"power_mw": 12500}}}
        answer = _probe.parse_answer(cipher.encrypt(json.dumps(reply).encode()), "127.0.0.1", 9999)
        self.assertEqual((answer.watts, answer.mac), (12.5, "AA:BB:CC:DD:EE:FF"))
        self.assertRaises(ValueError, _probe.parse_answer,
                          cipher.encrypt(b'{"system": {}}'), "127.0.0.1", 9999)

    def test_usage_errors(self):
        for argv in (["--timeout", "0"], ["--port", "70000"], ["--bogus"]):
            err = io.StringIO()
            self.assertEqual(_probe.main(argv, io.StringIO(), err), 2, argv)
            self.assertIn("usage: python -m senselink probe", err.getvalue())

    def test_a_timeout_out_of_range_is_refused_naming_the_range(self):
        """Before, `--timeout inf` (or 1e9) waited for ever."""
        for value in ("1e9", "nan", "-1", "0.001", "3600.5", "soon"):
            with self.assertRaises(usage.UsageError, msg=value) as raised:
                _probe.Options().parseOptions(["--timeout", value])
            self.assertEqual(str(raised.exception), f"--timeout must be a number of seconds "
                                                    f"from 0.01 to 3600, got {value}")
        for value, seconds in (("0.01", 0.01), ("3600", 3600.0), ("2.5", 2.5)):
            options = _probe.Options()
            options.parseOptions(["--timeout", value])
            self.assertEqual(options["timeout"], seconds)
        self.assertIn("From 0.01 to 3600 seconds.", " ".join(str(_probe.Options()).split()))
        silent = self.listen(SilentListener())
        done = subprocess.run([sys.executable, "-m", "senselink", "probe", "--target",
                               "127.0.0.1", "--port", str(silent), "--timeout", "inf"],
                              capture_output=True, text=True, env=child_env(), cwd=ROOT,
                              timeout=WAIT)
        self.assertEqual((done.returncode, done.stdout), (2, ""))
        self.assertEqual(done.stderr.splitlines()[0], "senselink probe: --timeout must be a "
                         "number of seconds from 0.01 to 3600, got inf")

    @defer.inlineCallbacks
    def test_a_reply_larger_than_8192_bytes_is_read_whole(self):
        """A valid 10,671-byte reply was 'unreadable': only 8192 bytes of it were read."""
        reply = fake_reply("A" * 10_000, "50:C7:BF:00:00:09")
        self.assertGreater(len(reply), 8192)
        port = self.listen(FakePlugs([reply]))
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-m", "senselink", "probe", "--target", "127.0.0.1",
                             "--port", str(port), "--timeout", str(WAIT), "--count", "1"],
            env=child_env(), path=ROOT)
        self.assertEqual(code, 0, (out, err))
        self.assertNotIn(b"unreadable", out)
        lines = out.decode().splitlines()
        self.assertEqual(lines[1].split()[:-1], [   # the alias clipped, as in every table
            "A" * 200 + "…", "(10000", "characters)", "50:C7:BF:00:00:09", "10.0", "HS110(US)"])
        self.assertLessEqual(max(len(line) for line in lines), 600)

    @defer.inlineCallbacks
    def test_ctrl_c_prints_the_table_so_far(self):
        """SIGINT to a probe with a long timeout: the answers so far, exit code 130.

        Before, it printed `RuntimeError: generator ignored GeneratorExit` and no table.
        """
        plugs = FakePlugs([fake_reply("Twin A", "50:C7:BF:00:00:01"),
                           fake_reply("Kettle", "50:C7:BF:00:00:02")])
        port = self.listen(plugs)
        proc = spawn([sys.executable, "-m", "senselink", "probe", "--target", "127.0.0.1",
                      "--port", str(port), "--timeout", "3600"], child_env(), path=ROOT)
        self.addCleanup(lambda: proc.ended.called or proc.transport.signalProcess("KILL"))
        yield with_timeout(plugs.answered)   # the probe runs, its SIGINT handler set
        proc.transport.signalProcess("INT")
        code = yield with_timeout(proc.ended)
        self.assertEqual(code, 130, proc.output)
        self.assertNotIn("Traceback", proc.output)
        self.assertRegex(proc.output, r"Twin A +50:C7:BF:00:00:01 +10\.0 +HS110\(US\)")
        self.assertRegex(proc.output, r"Kettle +50:C7:BF:00:00:02 +10\.0 +HS110\(US\)")
        self.assertIn(f"\n2 plug(s) answered the Sense request to 127.0.0.1:{port} before the "
                      f"probe was interrupted\n", proc.output)

    @defer.inlineCallbacks
    def test_an_interrupted_probe_without_answers(self):
        silent = SilentListener()
        port = self.listen(silent)
        interrupt = defer.Deferred()
        probing = _probe.probe(reactor, "127.0.0.1", port, timeout=3, clock=Clock(),
                               interrupt=interrupt)
        yield with_timeout(silent.received)
        interrupt.callback(None)
        result = yield probing
        out = io.StringIO()
        self.assertEqual(_probe.report(result, out), _probe.INTERRUPTED)
        self.assertEqual(out.getvalue(), f"No plug answered the Sense request to "
                                         f"127.0.0.1:{port} before the probe was interrupted.\n")

    @defer.inlineCallbacks
    def test_command_line(self):
        """`python -m senselink probe`: exit 0 and a table with answers, 1 without."""
        service = self.start_daemon()
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-m", "senselink", "probe", "--target", "127.0.0.1",
                             "--port", str(service.udp_port), "--timeout", str(WAIT),
                             "--count", "2"], env=child_env(), path=ROOT)
        self.assertEqual(code, 0, (out, err))
        self.assertIn(b"NAS Server", out)
        self.assertIn(b"Ceiling Fan", out)
        silent_port = self.listen(SilentListener())
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-m", "senselink", "probe", "--target", "127.0.0.1",
                             "--port", str(silent_port), "--timeout", "0.2"],
            env=child_env(), path=ROOT)
        self.assertEqual(code, 1, (out, err))
        self.assertIn(b"No plug answered", out)


def thousand_plugs():
    lines = ["sources:", "  - static:", "      plugs:"]
    for i in range(1000):
        lines.append(f"        - p{i}: {{alias: 'Plug {i}', mac: '53:75:31:F7:{i // 256:02X}:"
                     f"{i % 256:02X}', max_watts: {i % 100}}}")
    return "\n".join(lines) + "\n"


class IPv6Tests(unittest.TestCase):
    """IPv6 targets: before, `IPv4 port write() called with IPv6 address`."""

    def setUp(self):
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this machine has no IPv6 loopback (::1)")
        self.service = makeService(load_text(CONFIG, "probe.yml"), port=0, interface="::")
        self.service.privilegedStartService()
        self.service.startService()
        self.addCleanup(self.service.stopService)

    @defer.inlineCallbacks
    def test_ipv6_loopback_with_and_without_brackets(self):
        port = self.service.udp_port
        for target in ("::1", "[::1]", "0:0:0:0:0:0:0:1"):
            result = yield _probe.probe(reactor, target, port, timeout=WAIT, count=2)
            self.assertEqual(sorted((a.alias, a.host) for a in result.answers),
                             [("Ceiling Fan", "::1"), ("NAS Server", "::1")], target)
            out = io.StringIO()
            self.assertEqual(_probe.report(result, out), 0)
            self.assertIn(f"NAS Server   53:75:31:F6:4C:01  15.0   HS110(US)  [::1]:{port}",
                          out.getvalue())
        self.assertIn(f"2 plug(s) answered the Sense request to [0:0:0:0:0:0:0:1]:{port}",
                      out.getvalue())

    @defer.inlineCallbacks
    def test_ipv4_target_of_a_dual_stack_daemon(self):
        result = yield _probe.probe(reactor, "127.0.0.1", self.service.udp_port, timeout=WAIT,
                                    count=2)
        self.assertEqual({a.host for a in result.answers}, {"127.0.0.1"})

    @defer.inlineCallbacks
    def test_command_line(self):
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-m", "senselink", "probe", "--target", "[::1]",
                             "--port", str(self.service.udp_port), "--timeout", str(WAIT),
                             "--count", "2"], env=child_env(), path=ROOT)
        self.assertEqual(code, 0, (out, err))
        self.assertIn(f"answered the Sense request to [::1]:{self.service.udp_port}".encode(),
                      out)


class TargetTests(unittest.TestCase):

    def test_parse_target(self):
        self.assertEqual(_probe.parse_target("::1"), ("::1", socket.AF_INET6))
        self.assertEqual(_probe.parse_target("[::1]"), ("::1", socket.AF_INET6))
        self.assertEqual(_probe.parse_target("fe80::1%eth0"), ("fe80::1%eth0", socket.AF_INET6))
        self.assertEqual(_probe.parse_target("[fe80::1%eth0]"),
                         ("fe80::1%eth0", socket.AF_INET6))
        self.assertEqual(_probe.parse_target("192.168.1.5"), ("192.168.1.5", socket.AF_INET))
        self.assertEqual(_probe.parse_target("nas.local"), ("nas.local", None))
        for bad in ("", "[]", "fe80::zz", "10.0.0.1%eth0", ":::"):
            self.assertRaises(ValueError, _probe.parse_target, bad)

    def test_bad_target_is_a_usage_error(self):
        err = io.StringIO()
        self.assertEqual(_probe.main(["--target", "fe80::zz"], io.StringIO(), err), 2)
        self.assertIn("--target: not an IP address: 'fe80::zz'", err.getvalue())


class LargeSetupTests(unittest.TestCase):
    """1000 plugs answer at once: before, the probe counted 394 of them."""

    @defer.inlineCallbacks
    def test_thousand_plugs_are_all_counted(self):
        service = makeService(load_text(thousand_plugs(), "thousand.yml"), port=0,
                              interface="127.0.0.1")
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        result = yield _probe.probe(reactor, "127.0.0.1", service.udp_port, timeout=WAIT,
                                    count=1000)
        self.assertEqual(service.counters.replies, {"sense": 1000})
        self.assertEqual(len(result.answers), 1000)
        self.assertEqual(len({a.mac for a in result.answers}), 1000)
        self.assertEqual(result.dropped, 0)
        self.assertEqual(result.warnings(), ["1000 plugs answered; Sense shows about 20 at most"])

    def test_drops_are_reported(self):
        """Where the buffer cannot be large enough, what the kernel dropped is said."""
        sock = _probe.receive_socket(socket.AF_INET, "127.0.0.1", size=64 * 1024)
        self.addCleanup(sock.close)
        reply = fake_reply("P", "50:C7:BF:00:01:01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(1000):
                sender.sendto(reply, sock.getsockname())
        dropped = _probe.dropped(sock)
        self.assertGreater(dropped, 0)
        result = _probe.ProbeResult("127.0.0.1", 9999, 3.0, dropped=dropped,
                                    buffer=sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
        self.assertEqual(result.warnings(), [
            f"{dropped} more replies arrived than the receive buffer ({result.buffer // 1024} "
            f"KiB) could hold and were not counted; run the probe as root or raise "
            f"net.core.rmem_max"])


class VersionTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_version_everywhere(self):
        """One version: the package, `python -m senselink --version`, and setup.py."""
        self.assertRegex(senselink.__version__, r"^\d+\.\d+\.\d+")
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["-m", "senselink", "--version"], env=child_env(), path=ROOT)
        self.assertEqual((code, out.decode().strip()), (0, f"senselink {senselink.__version__}"))
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, ["setup.py", "--version"], env=child_env(), path=ROOT)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.decode().strip().splitlines()[-1], senselink.__version__)
