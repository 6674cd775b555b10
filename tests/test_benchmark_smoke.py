"""The benchmark's reply checker (benchmarks/loadgen.py): it must accept exactly
the correct Sense replies, since every benchmark figure rests on it. No timing here."""

import json

from twisted.trial import unittest

from benchmarks import loadgen
from senselink.kasa import cipher, messages

MACS = {"53:75:31:BE:00:00": 10.0, "53:75:31:BE:00:01": 11.5}


def reply(mac, power, **changes):
    body = messages.sense_reply(alias="Bench", mac=mac, device_id="AB" * 20, power=power,
                                voltage=120.0, on=True)
    body["system"]["get_sysinfo"].update(changes)
    return messages.encode(body)


class ReplyCheckerTests(unittest.TestCase):
    def setUp(self):
        self.checker = loadgen.ReplyChecker(MACS)

    def test_request_matches_the_project(self):
        """The load generator's independently encrypted request is the project's Sense request."""
        self.assertEqual(loadgen.REQUEST, messages.SENSE_REQUEST_ENCRYPTED)
        self.assertEqual(loadgen.decrypt(loadgen.REQUEST), messages.SENSE_REQUEST)

    def test_reference_cipher_agrees(self):
        """The checker's decryption undoes the project's encryption, and its reference
        byte-by-byte encryption agrees with the project's bulk one."""
        for n in (0, 1, 2, 7, 8, 9, 255, 256, 673, 1500):
            plain = bytes((i * 37 + n) % 256 for i in range(n))
            self.assertEqual(loadgen.encrypt(plain), cipher.encrypt(plain))
            self.assertEqual(loadgen.decrypt(cipher.encrypt(plain)), plain)

    def test_accepts_a_complete_answer(self):
        request = loadgen.Request(0.0)
        self.assertFalse(loadgen.add_reply(self.checker, request, reply("53:75:31:be:00:00", 10.0)))
        self.assertTrue(loadgen.add_reply(self.checker, request, reply("53:75:31:BE:00:01", 11.5)))
        self.assertEqual(request.macs, set(MACS))

    def test_same_bytes_verified_once(self):
        data = reply("53:75:31:BE:00:00", 10.0)
        for _ in range(3):
            self.assertEqual(self.checker.check(data), "53:75:31:BE:00:00")
        self.assertEqual(self.checker.verified, 1)

    def test_rejects_wrong_replies(self):
        wrong = {
            "unknown mac": reply("53:75:31:BE:00:09", 10.0),
            "wrong power": reply("53:75:31:BE:00:00", 12.0),
            "wrong type": reply("53:75:31:BE:00:00", 10.0, type="IOT.SMARTBULB"),
            "not encrypted": json.dumps({"emeter": {}}).encode(),
            "no sysinfo": cipher.encrypt(b'{"emeter":{"get_realtime":{"power":10.0}}}'),
            "power not a number": messages.encode({
                "emeter": {"get_realtime": {"power": "10"}},
                "system": {"get_sysinfo": {"mac": "53:75:31:BE:00:00",
                                           "type": "IOT.SMARTPLUGSWITCH"}}}),
            "empty": b"",
        }
        for what, data in wrong.items():
            with self.assertRaises(loadgen.BadReply, msg=what):
                self.checker.check(data)

    def test_rejects_a_plug_answered_twice(self):
        request = loadgen.Request(0.0)
        data = reply("53:75:31:BE:00:00", 10.0)
        loadgen.add_reply(self.checker, request, data)
        self.assertRaises(loadgen.BadReply, loadgen.add_reply, self.checker, request, data)

    def test_percentile(self):
        values = list(range(1, 101))
        self.assertEqual(loadgen.percentile(values, 50), 50)
        self.assertEqual(loadgen.percentile(values, 99), 99)
        self.assertEqual(loadgen.percentile([7.0], 99), 7.0)
