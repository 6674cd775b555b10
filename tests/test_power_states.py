"""The power model's named states (state_power) and readings in parts (sums, current x voltage)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink.keypath import MISSING
from senselink.plugs import Plug
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.readings import Parts, PowerPaths, Product
from senselink.statewords import MAX_UNKNOWN_STATES

CLIMATE = {"heat": 1800, "cool": 950, "fan_only": 60, "idle": 4, "off": 0}


def make_plug(clock):
    return Plug("p", mac="53:75:31:00:00:01", device_id="0" * 40, kind="test", clock=clock)


class Logged:
    """The formatted lines the power model logs during a test."""

    def __init__(self, testcase):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        testcase.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def lines(self):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace") in ("senselink.power", "senselink.statewords")]


class NamedStateTests(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.plug = make_plug(self.clock)
        self.log = Logged(self)

    def test_climate_states(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        for state, watts, on in (("heat", 1800, True), ("cool", 950, True), ("idle", 4, True),
                                 ("fan_only", 60, True), ("off", 0, False)):
            self.assertEqual(feed.entity(state=state), watts)
            self.assertEqual((self.plug.watts, self.plug.on), (watts, on), state)
        self.assertEqual(feed.state("heat"), 1800)       # one value per message (MQTT)
        self.assertEqual(self.log.lines(), [])

    def test_matching_is_exact_by_default(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        feed.entity(state="heat")
        self.assertEqual(feed.entity(state="HEAT"), 1800)          # unknown: kept
        self.assertEqual(feed.entity(state=" heat"), 1800)
        self.assertEqual(len(self.log.lines()), 2)

    def test_case_insensitive(self):
        model = PowerModel(state_power={"Heat": 1800, "ON": 40}, state_case_sensitive=False,
                           on_state_value="Running", off_state_value="OFF")
        feed = Feed(self.plug, model, self.clock)
        self.assertEqual(feed.entity(state="hEAT"), 1800)
        self.assertEqual(feed.entity(state="on"), 40)
        self.assertEqual(feed.entity(state="off"), 0)       # off_state_value, ignoring case
        self.assertFalse(self.plug.on)
        self.assertTrue(model.is_on("RUNNING"))
        self.assertFalse(PowerModel(off_state_value="OFF").is_off("off"))   # exact by default

    def test_booleans_and_numbers_match_their_text(self):
        feed = Feed(self.plug, PowerModel(state_power={"true": 40, "false": 1, "2": 28}),
                    self.clock)
        self.assertEqual(feed.entity(state=True), 40)
        self.assertEqual(feed.entity(state=False), 1)
        self.assertEqual(feed.entity(state=2), 28)
        self.assertEqual(feed.state(b"2"), 28)

    def test_json_booleans_mean_truth_words_as_for_on_state_value(self):
        feed = Feed(self.plug, PowerModel(state_power={"ON": 40, "off": 1}), self.clock)
        self.assertEqual(feed.entity(state=True), 40)
        self.assertEqual(feed.entity(state=False), 1)
        self.assertEqual(feed.entity(state=1), 1)          # 1 and 0 mean true and false only
        feed = Feed(self.plug, PowerModel(state_power={"1": 7, "True": 9, "no": 2}), self.clock)
        self.assertEqual(feed.entity(state=1), 7)          # its text first
        self.assertEqual(feed.entity(state=1.0), 9)
        self.assertEqual(feed.entity(state=True), 9)
        self.assertEqual(feed.entity(state=False), 2)
        self.assertEqual(feed.entity(state=0), 2)          # unknown: kept

    def test_unknown_state_keeps_the_last_value_and_is_logged_once_per_word(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        feed.entity(state="cool")
        self.assertEqual(feed.entity(state="auto"), 950)
        self.assertEqual(feed.entity(state="auto"), 950)
        self.assertEqual(feed.state("auto"), 950)
        lines = self.log.lines()
        self.assertEqual(lines, ["Plug p: state 'auto' is not in its state_power ('heat', 'cool', "
                                 "'fan_only', 'idle', 'off'); keeping 950.0 W"])
        feed.entity(state="heat")
        feed.entity(state="auto")                      # the same word again: not logged
        feed.entity(state="dry")                       # another word: logged
        self.assertEqual(len(self.log.lines()), 2)
        self.assertIn("state 'dry'", self.log.lines()[1])
        self.assertEqual(self.plug.watts, 1800)

    def test_numeric_state_is_a_word_with_state_power(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        feed.entity(state="idle")
        self.assertEqual(feed.entity(state="120"), 4)
        self.assertEqual(feed.state("120"), 4)

    def test_state_power_default(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE, state_power_default=200),
                    self.clock)
        feed.entity(state="heat")
        self.assertEqual(feed.entity(state="auto"), 200)
        self.assertEqual((self.plug.watts, self.plug.on), (200, True))
        feed.entity(state="auto")
        self.assertEqual(self.log.lines(), [
            "Plug p: state 'auto' is not in its state_power ('heat', 'cool', 'fan_only', "
            "'idle', 'off'); reporting state_power_default 200.0 W"])

    def test_unknown_words_logged_are_bounded(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        for n in range(MAX_UNKNOWN_STATES + 50):
            feed.entity(state=f"mode{n}")
        lines = self.log.lines()
        self.assertEqual(len(lines), MAX_UNKNOWN_STATES + 1)
        self.assertIn(f"more than {MAX_UNKNOWN_STATES} unknown states", lines[-1])
        self.assertLessEqual(len(feed._unknown.seen), MAX_UNKNOWN_STATES + 1)

    def test_a_huge_state_is_quoted_clipped(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE), self.clock)
        feed.entity(state="x" * 100_000)
        (line,) = self.log.lines()
        self.assertLess(len(line), 700)
        self.assertIn("(100000 characters)", line)     # the repr's size

    def test_unknown_state_is_not_an_update_for_the_timeout(self):
        feed = Feed(self.plug, PowerModel(state_power=CLIMATE, off_usage=1), self.clock,
                    timeout=60)
        feed.entity(state="heat")
        self.clock.advance(50)
        feed.entity(state="auto")
        self.clock.advance(11)
        self.assertEqual((self.plug.watts, self.plug.on), (1, False))
        feed.entity(state="heat")                      # a known state restarts it
        self.clock.advance(50)
        feed.entity(state="heat")
        self.clock.advance(50)
        self.assertEqual(self.plug.watts, 1800)
        feed.stop()

    def test_a_named_state_draws_no_more_than_off_usage_is_off(self):
        feed = Feed(self.plug, PowerModel(state_power={"standby": 2, "run": 40}, off_usage=2),
                    self.clock)
        feed.entity(state="standby")
        self.assertEqual((self.plug.watts, self.plug.on), (2, False))
        feed.entity(state="run")
        self.assertEqual((self.plug.watts, self.plug.on), (40, True))

    def test_state_power_wins_over_the_default_off_and_on_values(self):
        model = PowerModel(state_power={"off": 2, "on": 30}, on_state_value="on", max_watts=99)
        feed = Feed(self.plug, model, self.clock)
        self.assertEqual(feed.entity(state="off"), 2)
        self.assertFalse(self.plug.on)
        self.assertEqual(feed.entity(state="on"), 30)
        self.assertEqual(feed.state("off"), 2)


class PrecedenceTests(unittest.TestCase):
    """state_power with an attribute: a fan whose percentage scales its power while on."""

    def setUp(self):
        self.clock = Clock()
        self.plug = make_plug(self.clock)
        self.model = PowerModel(state_power={"unavailable": 0, "sleep": 6}, attribute_max=100,
                                min_watts=4, max_watts=44, off_usage=0.5, on_state_value="on")
        self.feed = Feed(self.plug, self.model, self.clock, uses_attribute=True)

    def test_whole_entity(self):
        feed = self.feed
        self.assertEqual(feed.entity(state="on", attribute=50), 24)         # 3. attribute
        self.assertEqual(feed.entity(state="sleep", attribute=50), 6)       # 1. named state
        self.assertEqual(feed.entity(state="off", attribute=50), 0.5)       # 2. off
        self.assertEqual(feed.entity(state="on", attribute=None), 44)       # 4. on: max_watts
        self.assertEqual(feed.entity(state="unavailable"), 0)
        self.assertEqual(feed.entity(state="on", attribute=100), 44)
        self.assertEqual(feed.entity(state="turbo"), 44)                    # 5. unknown: kept
        self.assertEqual(feed.entity(state="turbo", attribute=25), 14)      # present: scaled

    def test_one_value_per_message(self):
        feed = self.feed
        feed.attribute(50)
        self.assertEqual(self.plug.watts, 24)
        feed.state("sleep")
        self.assertEqual(self.plug.watts, 6)
        feed.attribute(100)            # a named state holds the watts: remembered, not reported
        self.assertEqual(self.plug.watts, 6)
        feed.state("on")               # on: the last attribute's watts
        self.assertEqual(self.plug.watts, 44)
        feed.state("off")
        feed.attribute(0)
        self.assertEqual(self.plug.watts, 0.5)
        feed.state("turbo")            # unknown: kept, attributes still wait
        feed.attribute(50)
        self.assertEqual(self.plug.watts, 0.5)
        feed.state("on")
        self.assertEqual(self.plug.watts, 24)


class PartsTests(unittest.TestCase):

    def setUp(self):
        self.clock = Clock()
        self.plug = make_plug(self.clock)
        self.model = PowerModel()

    def test_sum(self):
        self.assertEqual(self.model.reading(Parts([45, "12.5", b"2"])), 59.5)
        self.assertEqual(self.model.reading(Parts([300, -50])), 250)      # a phase feeding back
        self.assertEqual(self.model.reading(Parts([10, -50])), 0)         # a negative total
        self.assertEqual(self.model.reading(Parts([7])), 7)

    def test_product(self):
        self.assertEqual(self.model.reading(Product("4.2", 230)), 4.2 * 230)
        self.assertEqual(self.model.reading(Product(-1, 230)), 0)

    def test_an_unreadable_part_names_it(self):
        paths = PowerPaths(parts=["ENERGY/Power/0", "ENERGY/Power/1"])
        reading = paths.read({"ENERGY": {"Power": [45]}})
        with self.assertRaises(UnreadableValue) as caught:
            self.model.reading(reading)
        self.assertEqual(str(caught.exception), "power part 'ENERGY/Power/1' is missing")
        reading = paths.read({"ENERGY": {"Power": [45, "unavailable"]}})
        with self.assertRaises(UnreadableValue) as caught:
            self.model.reading(reading)
        self.assertIn("power part 'ENERGY/Power/1': 'unavailable' is not a number",
                      str(caught.exception))
        with self.assertRaises(UnreadableValue) as caught:
            self.model.reading(Parts([1, MISSING]))
        self.assertEqual(str(caught.exception), "power part 2 of 2 is missing")
        paths = PowerPaths(current="I", voltage="U")
        with self.assertRaises(UnreadableValue) as caught:
            self.model.reading(paths.read({"I": 2}))
        self.assertEqual(str(caught.exception), "voltage 'U' is missing")

    def test_beyond_the_float_range(self):
        for reading in (Parts([1e308, 1e308]), Parts([-1e308, -1e308]), Product(1e200, 1e200),
                        Product(-1e200, 1e200), Parts([10 ** 400])):
            self.assertRaises(UnreadableValue, self.model.reading, reading)

    def test_feed_keeps_the_last_value_when_a_part_is_missing(self):
        feed = Feed(self.plug, self.model, self.clock, uses_power=True)
        paths = PowerPaths(parts=["a", "b", "c"])
        self.assertEqual(feed.entity(state="on", power=paths.read({"a": 1, "b": 2, "c": 3})), 6)
        self.assertRaises(UnreadableValue, feed.entity, state="on",
                          power=paths.read({"a": 1, "c": 3}))
        self.assertEqual(self.plug.watts, 6)
        self.assertEqual(feed.power(Product(0.5, 230)), 115)
        self.assertEqual(self.plug.watts, 115)

    def test_paths_from_settings(self):
        from senselink.sources.httpsettings import HttpPlugSettings
        from senselink.sources.mqtt.settings import MqttPlugSettings
        self.assertIsNone(PowerPaths.from_settings(HttpPlugSettings()))
        one = PowerPaths.from_settings(HttpPlugSettings(power_keypath="a/b"))
        self.assertEqual((one.single, one.several), (("a", "b"), False))
        self.assertEqual(one.read({"a": {"b": 5}}), 5)
        self.assertIs(one.read({}), MISSING)
        parts = PowerPaths.from_settings(HttpPlugSettings(power_keypaths=("a/0", "a/1")))
        self.assertTrue(parts.several)
        self.assertEqual(parts.read({"a": [1, 2]}).values, (1, 2))
        product = PowerPaths.from_settings(HttpPlugSettings(current_keypath="i",
                                                            voltage_keypath="u"))
        self.assertEqual(self.model.reading(product.read({"i": 2, "u": 230})), 460)
        self.assertIsNone(PowerPaths.from_settings(MqttPlugSettings(power_topic_keypath="x"),
                                                   single=None))


# ---------------------------------------------------------------- properties

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(max_size=8) | st.binary(max_size=8)
    | st.sampled_from(["heat", "HEAT", "on", "off", "unavailable", "1e308", "-1e308", "nan",
                       "inf", "1e999", "-0", " 12 "]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6)
watts = st.floats(min_value=0, max_value=1e308, allow_nan=False, allow_infinity=False)
numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e308, max_value=1e308)
readings = (anything
            | st.lists(anything | numbers, max_size=4).map(Parts)
            | st.tuples(anything | numbers, anything | numbers).map(lambda cv: Product(*cv)))
models = st.builds(
    lambda state_power, sensitive, default, low, high, off, top, curve: PowerModel(
        state_power=state_power, state_case_sensitive=sensitive, state_power_default=default,
        min_watts=low, max_watts=high, off_usage=off, attribute_max=top, on_state_value="on",
        power_curve=curve),
    st.none() | st.dictionaries(st.sampled_from(["heat", "Heat", "idle", "on", "off", "1"]),
                                watts, max_size=5),
    st.booleans(), st.none() | watts, watts, watts, st.none() | watts,
    st.none() | numbers,
    st.none() | st.lists(st.tuples(numbers, watts), min_size=2, max_size=4,
                         unique_by=lambda point: point[0]))
calls = st.lists(st.one_of(
    st.tuples(st.just("entity"), anything, anything, readings),
    st.tuples(st.just("state"), anything),
    st.tuples(st.just("attribute"), anything),
    st.tuples(st.just("power"), readings)), max_size=8)


class PropertyTests(unittest.TestCase):
    """Whatever arrives, a plug's watts stay finite and >= 0 (or unchanged)."""

    @given(model=models, uses=st.sampled_from(["", "power", "attribute"]), calls=calls)
    @settings(max_examples=400, deadline=None)
    def test_no_input_gives_negative_nan_or_infinite_watts(self, model, uses, calls):
        clock = Clock()
        plug = make_plug(clock)
        feed = Feed(plug, model, clock, uses_power=uses == "power",
                    uses_attribute=uses == "attribute" and (model.attribute_max is not None
                                                            or model.power_curve is not None))
        for call in calls:
            before = plug.watts
            try:
                if call[0] == "entity":
                    result = feed.entity(state=call[1], attribute=call[2], power=call[3])
                else:
                    result = getattr(feed, call[0])(*call[1:])
            except UnreadableValue:
                self.assertEqual(plug.watts, before)
                continue
            for value in (result, plug.watts):
                if value is not None:      # an attribute while the state holds: no result
                    self.assertTrue(math.isfinite(value) and value >= 0, (call, value))

    @given(reading=readings)
    @settings(max_examples=300, deadline=None)
    def test_any_reading(self, reading):
        try:
            value = PowerModel().reading(reading)
        except UnreadableValue:
            return
        self.assertTrue(math.isfinite(value) and value >= 0, (reading, value))
