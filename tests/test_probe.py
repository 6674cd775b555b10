"""The probe (python -m senselink probe), against loopback targets only."""

import io
import json
import sys

from twisted.internet import defer, reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial import unittest

import senselink
from senselink import probe as _probe
from senselink.config import load_text
from senselink.kasa import cipher, messages
from senselink.service import makeService
from tests.deploy_support import ROOT, WAIT, child_env, with_timeout

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
    """Answers each request with the given raw datagrams (to test the warnings)."""

    def __init__(self, datagrams):
        self.datagrams = datagrams

    def datagramReceived(self, data, addr):
        for datagram in self.datagrams:
            self.transport.write(datagram, addr)


def fake_reply(alias, mac, model=messages.HS110_MODEL, power=10.0):
    reply = messages.sense_reply(alias=alias, mac=mac, device_id="AB" * 20, power=power,
                                 voltage=120.0, on=True)
    reply["system"]["get_sysinfo"]["model"] = model
    return messages.encode(reply)


class ProbeTests(unittest.TestCase):

    def start_daemon(self):
        service = makeService(load_text(CONFIG, "probe.yml"), port=0, interface="127.0.0.1")
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
