"""Property-based tests: the parsers never raise anything but their documented errors."""

import json
import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from senselink import config, keypath
from senselink.kasa import cipher, messages
from senselink.plugs import PlugSet
from senselink.replies import SenseReplyCache
from senselink.power import PowerModel, UnreadableValue
from senselink.responder import Responder

# Deterministic in CI, no deadline (the machine's speed is not under test).
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20)


class CipherProperties(unittest.TestCase):
    @FUZZ
    @given(st.binary(max_size=2048))
    def test_round_trip(self, data):
        self.assertEqual(cipher.decrypt(cipher.encrypt(data)), data)
        self.assertEqual(len(cipher.encrypt(data)), len(data))

    @FUZZ
    @given(st.binary(max_size=2048))
    def test_frame(self, data):
        framed = cipher.frame(data)
        self.assertEqual(cipher.frame_length(framed[:4]), len(data))


class ClassificationProperties(unittest.TestCase):
    @FUZZ
    @given(st.binary(max_size=512))
    def test_random_bytes(self, data):
        try:
            kind, _ = messages.classify_datagram(data)
        except messages.MalformedRequest:
            return
        self.assertIn(kind, (messages.SENSE, messages.ECHO, messages.OTHER))

    @FUZZ
    @given(json_values)
    def test_any_json(self, value):
        data = cipher.encrypt(json.dumps(value).encode())
        try:
            kind, request = messages.classify_datagram(data)
        except messages.MalformedRequest:
            self.assertNotIsInstance(value, dict)
            return
        self.assertIsInstance(request, dict)

    @FUZZ
    @given(st.dictionaries(st.sampled_from(["emeter", "system", "time", "x"]),
                           st.dictionaries(st.sampled_from(["get_realtime", "get_sysinfo", "y"]),
                                           json_values, max_size=3), max_size=3))
    def test_responder_never_raises(self, request):
        responder = Responder(SenseReplyCache(PlugSet()))
        replies = responder.handle(cipher.encrypt(json.dumps(request).encode()), "127.0.0.1")
        self.assertIsInstance(replies, list)


class KeypathProperties(unittest.TestCase):
    @FUZZ
    @given(json_values, st.text(max_size=30))
    def test_lookup_never_raises(self, value, path):
        keypath.lookup(value, path)

    @FUZZ
    @given(st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=3), st.integers(), min_size=1))
    def test_lookup_finds_keys(self, mapping):
        for key, item in mapping.items():
            self.assertEqual(keypath.lookup({"root": mapping}, f"root/{key}"), item)


finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
anything = st.one_of(st.floats(), st.integers(), st.text(max_size=10), st.none(), st.booleans())


def sane(watts):
    return math.isfinite(watts) and watts >= 0


class PowerModelProperties(unittest.TestCase):
    @FUZZ
    @given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), anything)
    def test_scaled_is_sane_and_clamped(self, w1, w2, a1, a2, value):
        low_w, high_w = sorted((w1, w2))
        low_a, high_a = sorted((a1, a2))
        model = PowerModel(min_watts=low_w, max_watts=high_w, attribute_min=low_a,
                           attribute_max=high_a)
        try:
            watts = model.scaled(value)
        except UnreadableValue:
            return
        self.assertTrue(sane(watts), watts)
        self.assertGreaterEqual(watts, low_w - 1e-6 * max(1, high_w))
        self.assertLessEqual(watts, high_w + 1e-6 * max(1, high_w))

    @FUZZ
    @given(st.lists(st.tuples(finite, st.floats(0, 1e6)), min_size=2, max_size=8,
                    unique_by=lambda p: p[0]), anything)
    def test_curve_is_sane_and_within_points(self, points, value):
        model = PowerModel(power_curve=points)
        try:
            watts = model.scaled(value)
        except UnreadableValue:
            return
        self.assertTrue(sane(watts), watts)
        ws = [w for _, w in points]
        self.assertGreaterEqual(watts, min(ws) - 1e-6 * max(1, max(ws)))
        self.assertLessEqual(watts, max(ws) + 1e-6 * max(1, max(ws)))

    @FUZZ
    @given(anything)
    def test_direct_is_sane(self, value):
        try:
            watts = PowerModel().direct(value)
        except UnreadableValue:
            return
        self.assertTrue(sane(watts), watts)


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12))
yaml_docs = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["sources", "static", "mutable", "aggregate", "plugs",
                                       "max_watts", "mac", "elements", "alias", "target", "x",
                                       "allow_from", "rate_limit", "power_curve", "skip_rate"]),
                      children, max_size=4),
    max_leaves=25)


class ConfigProperties(unittest.TestCase):
    @FUZZ
    @given(yaml_docs)
    def test_documents_give_config_or_clear_error(self, document):
        text = yaml.safe_dump(document)
        try:
            result = config.load_text(text, "fuzz.yml")
        except config.ConfigError as e:
            self.assertTrue(all(p.startswith("fuzz.yml") for p in e.problems), e.problems)
            return
        self.assertIsInstance(result, config.Config)

    @FUZZ
    @given(st.text(max_size=200))
    def test_any_text(self, text):
        try:
            config.load_text(text, "fuzz.yml")
        except config.ConfigError as e:
            self.assertTrue(e.problems)


plug_keys = st.sampled_from(["alias", "mac", "device_id", "skip_rate", "voltage", "max_watts",
                             "min_watts", "on_fraction", "off_usage", "power", "elements",
                             "unknown_key"])
plug_values = st.one_of(yaml_scalars, st.lists(st.sampled_from(["p0", "p1", "p2", "zz"]), max_size=3),
                        st.sampled_from(["53:75:31:00:00:01", "53:75:31:00:00:02", "${NOPE}"]))
structured_docs = st.fixed_dictionaries({
    "sources": st.lists(
        st.dictionaries(st.sampled_from(["static", "mutable", "aggregate", "bogus"]),
                        st.fixed_dictionaries({"plugs": st.lists(
                            st.dictionaries(st.sampled_from(["p0", "p1", "p2"]),
                                            st.dictionaries(plug_keys, plug_values, max_size=4),
                                            min_size=1, max_size=1),
                            max_size=3)}),
                        min_size=1, max_size=1),
        max_size=3)})


class StructuredConfigProperties(unittest.TestCase):
    @FUZZ
    @given(structured_docs)
    def test_original_shaped_documents(self, document):
        try:
            result = config.load_text(yaml.safe_dump(document), "fuzz.yml")
        except config.ConfigError as e:
            self.assertTrue(all(p.startswith("fuzz.yml") for p in e.problems), e.problems)
            return
        self.assertEqual(len({p.settings.mac for p in result.plugs.values()}), len(result.plugs))
