import os

from twisted.trial import unittest

from senselink.kasa import cipher, messages


class CipherTests(unittest.TestCase):
    def test_vector(self):
        plain = b'{"system":{"get_sysinfo":{}}}'
        self.assertEqual(len(plain), 29)
        encrypted = cipher.encrypt(plain)
        self.assertEqual(encrypted.hex(),
                         "d0f281f88bff9af7d5ef94b6d1b4c09fec95e68fe187e8caf08bf68bf6")
        self.assertEqual(cipher.frame(encrypted)[:4].hex(), "0000001d")
        self.assertEqual(cipher.decrypt(encrypted), plain)

    def test_round_trip(self):
        for size in (0, 1, 2, 255, 256, 4096):
            data = os.urandom(size)
            self.assertEqual(cipher.decrypt(cipher.encrypt(data)), data)
            self.assertEqual(cipher.encrypt(cipher.decrypt(data)), data)

    def test_leading_zero_bytes_survive(self):
        # Decryption works on big integers: leading zero bytes must not be lost.
        plain = b"\x00\x00\xab\x00"
        self.assertEqual(cipher.decrypt(cipher.encrypt(plain)), plain)
        self.assertEqual(cipher.decrypt(b"\xab\xab"), b"\x00\x00")

    def test_frame_length(self):
        framed = cipher.frame(b"x" * 300)
        self.assertEqual(cipher.frame_length(framed[:4]), 300)


class ClassifyTests(unittest.TestCase):
    def test_sense_request_bytes(self):
        kind, request = messages.classify_datagram(messages.SENSE_REQUEST_ENCRYPTED)
        self.assertEqual(kind, messages.SENSE)

    def test_sense_request_with_spaces(self):
        data = cipher.encrypt(b'{"emeter": {"get_realtime": {}}, "system": {"get_sysinfo": {}}}')
        self.assertEqual(messages.classify_datagram(data)[0], messages.SENSE)

    def test_echo(self):
        reply = messages.sense_reply(alias="a", mac="53:75:31:00:00:01", device_id="0" * 40,
                                     power=5, voltage=120, on=True)
        self.assertEqual(messages.classify_datagram(messages.encode(reply))[0], messages.ECHO)

    def test_sense_with_more_modules_is_a_kasa_client(self):
        data = cipher.encrypt(b'{"emeter":{"get_realtime":{}},"system":{"get_sysinfo":{}},'
                              b'"smartlife.iot.common.emeter":{"get_realtime":{}}}')
        self.assertEqual(messages.classify_datagram(data)[0], messages.OTHER)

    def test_other(self):
        data = cipher.encrypt(b'{"system":{"get_sysinfo":{}}}')
        self.assertEqual(messages.classify_datagram(data)[0], messages.OTHER)

    def test_wrong_types_are_other(self):
        for text in (b'{"emeter":null,"system":{"get_sysinfo":{}}}',
                     b'{"emeter":{"get_realtime":[]},"system":{"get_sysinfo":{}}}',
                     b'{"emeter":{"get_realtime":{}},"system":5}'):
            self.assertEqual(messages.classify_datagram(cipher.encrypt(text))[0], messages.OTHER)

    def test_malformed(self):
        for text in (b"", b"[1,2]", b"42", b"not json", b'"text"', b"\xff\xfe", b"[" * 100000):
            self.assertRaises(messages.MalformedRequest, messages.classify_datagram,
                              cipher.encrypt(text))

    def test_reply_fields(self):
        reply = messages.sense_reply(alias="Fan", mac="53:75:31:aa:bb:cc", device_id="ab" * 20,
                                     power=60, voltage=120, on=True)
        realtime = reply["emeter"]["get_realtime"]
        self.assertEqual((realtime["power"], realtime["voltage"], realtime["current"],
                          realtime["err_code"]), (60, 120, 0.5, 0))
        sysinfo = reply["system"]["get_sysinfo"]
        self.assertEqual(sysinfo["model"], "HS110(US)")
        self.assertEqual(sysinfo["mac"], "53:75:31:AA:BB:CC")
        self.assertEqual(sysinfo["type"], "IOT.SMARTPLUGSWITCH")
        self.assertEqual(sysinfo["relay_state"], 1)
        self.assertEqual(sysinfo["deviceId"], "AB" * 20)

    def test_errors(self):
        self.assertEqual(messages.module_error("foo"),
                         {"foo": {"err_code": -1, "err_msg": "module not support"}})
        self.assertEqual(messages.method_error("system", "bar"),
                         {"system": {"bar": {"err_code": -2, "err_msg": "member not support"}}})
