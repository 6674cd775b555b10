import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st
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


PROPERTY = settings(max_examples=400, deadline=None, derandomize=True)
finite = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
watts = st.one_of(finite, st.sampled_from([0.0, -0.0, 1e-9, 5e-5, 1e-4, 2.675, 1e9, 1e12, 1e16]),
                  st.floats(min_value=0.0, max_value=1e5), st.integers(min_value=0, max_value=10**6))


class ChainTests(unittest.TestCase):
    @PROPERTY
    @given(st.binary(), st.binary())
    def test_encrypted_in_parts(self, first, second):
        """A message encrypted whole equals its parts chained: the reply encoder relies on it."""
        head = cipher.encrypt(first)
        key = head[-1] if head else cipher.INITIAL_KEY
        self.assertEqual(head + cipher.rekey(messages.chain(second), key),
                         cipher.encrypt(first + second))
        self.assertEqual(head + cipher.encrypt(second, key), cipher.encrypt(first + second))


class SenseReplyEncoderTests(unittest.TestCase):
    """The fast Sense reply is byte for byte the dictionary serialised and encrypted."""

    @PROPERTY
    @given(alias=st.text(), power=watts, total=watts, on=st.booleans(),
           voltage=st.one_of(st.sampled_from([0.0, 120.0, 230.0, 240.5]), finite),
           device_id=st.text(alphabet="0123456789ABCDEF", min_size=40, max_size=40))
    def test_same_bytes_as_the_dictionary(self, alias, power, total, on, voltage, device_id):
        mac = "53:75:31:AA:BB:CC"
        encoder = messages.SenseReplyEncoder(alias=alias, mac=mac, device_id=device_id,
                                             voltage=voltage)
        expected = messages.encode(messages.sense_reply(
            alias=alias, mac=mac, device_id=device_id, power=power, voltage=float(voltage),
            on=on, total_kwh=total))
        self.assertEqual(encoder.encode(power, on, total), expected)

    def test_tricky_aliases(self):
        for alias in ('"relay_state":0,', 'a\\"relay_state":1,"x', "\u00e9\u4e2d\U0001f600", ""):
            encoder = messages.SenseReplyEncoder(alias=alias, mac="53:75:31:00:00:01",
                                                 device_id="0" * 40, voltage=120.0)
            reply = json.loads(messages.decrypt(encoder.encode(60.0, False, 1.5)))
            sysinfo = reply["system"]["get_sysinfo"]
            self.assertEqual((sysinfo["alias"], sysinfo["relay_state"]), (alias, 0))
            self.assertEqual(reply["emeter"]["get_realtime"],
                             {"current": 0.5, "voltage": 120.0, "power": 60.0, "total": 1.5,
                              "err_code": 0})
