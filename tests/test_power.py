import math

from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.plugs import Plug
from senselink.power import Feed, PowerModel, UnreadableValue, number
from senselink.statewords import means


def plug(clock):
    return Plug("p", mac="53:75:31:00:00:01", device_id="0" * 40, kind="test", clock=clock)


class ModelTests(unittest.TestCase):
    def test_static(self):
        self.assertEqual(PowerModel(max_watts=15).static_watts(), 15)
        self.assertEqual(PowerModel(min_watts=2, max_watts=40, on_fraction=0.5).static_watts(), 21)

    def test_off_usage_defaults_to_min_watts(self):
        self.assertEqual(PowerModel(min_watts=3, max_watts=10).off_usage, 3)
        self.assertEqual(PowerModel(min_watts=3, off_usage=0).off_usage, 0)

    def test_linear_scaling_clamps(self):
        model = PowerModel(min_watts=10, max_watts=60, attribute_min=0, attribute_max=255)
        self.assertEqual(model.scaled(0), 10)
        self.assertEqual(model.scaled(255), 60)
        self.assertAlmostEqual(model.scaled(127.5), 35)
        self.assertEqual(model.scaled(-40), 10)
        self.assertEqual(model.scaled(1000), 60)
        self.assertEqual(model.scaled("255"), 60)

    def test_power_curve(self):
        model = PowerModel(power_curve=[[0, 0], [50, 10], [100, 60]])
        self.assertEqual(model.scaled(25), 5)
        self.assertEqual(model.scaled(75), 35)
        self.assertEqual(model.scaled(-5), 0)
        self.assertEqual(model.scaled(500), 60)

    def test_unreadable(self):
        model = PowerModel(max_watts=1, attribute_max=255)
        for value in ("unavailable", "unknown", None, True, "nan", float("inf"), [], {}):
            self.assertRaises(UnreadableValue, model.scaled, value)
            self.assertRaises(UnreadableValue, model.direct, value)

    def test_direct_never_negative(self):
        self.assertEqual(PowerModel().direct(-5), 0)
        self.assertEqual(PowerModel().direct("12.5"), 12.5)

    def test_number(self):
        self.assertEqual(number(" 3.5 "), 3.5)
        self.assertEqual(number(b"7"), 7)
        self.assertRaises(UnreadableValue, number, "1e999")
        for bad in ("nan", "-inf", b"inf", float("nan"), float("inf"), 10 ** 400, True, None,
                    "", b"\xff", "12 W", [], {"power": 1}):
            self.assertRaises(UnreadableValue, number, bad)

        class Text(str):
            pass

        class Count(int):
            pass

        self.assertEqual((number(Text(" 4.5\n")), number(Count(3)), number(" 1000 ")),
                         (4.5, 3.0, 1000.0))
        self.assertEqual(PowerModel().direct(-0.0), 0.0)
        self.assertEqual(str(PowerModel().direct("-0.0")), "0.0")
        self.assertFalse(math.isnan(PowerModel(max_watts=5, attribute_max=1).scaled(0.5)))


class FeedTests(unittest.TestCase):
    def setUp(self):
        self.clock = Clock()
        self.plug = plug(self.clock)

    def test_entity_dimmer(self):
        model = PowerModel(min_watts=0, max_watts=42, attribute_max=255, off_usage=0)
        feed = Feed(self.plug, model, self.clock, uses_attribute=True)
        feed.entity(state="on", attribute=255)
        self.assertEqual((self.plug.watts, self.plug.on), (42, True))
        feed.entity(state="off", attribute=None)
        self.assertEqual((self.plug.watts, self.plug.on), (0, False))

    def test_entity_switch_with_vampire_usage(self):
        model = PowerModel(max_watts=42, off_usage=4, on_state_value="on")
        feed = Feed(self.plug, model, self.clock)
        feed.entity(state="on")
        self.assertEqual(self.plug.watts, 42)
        feed.entity(state="off")
        self.assertEqual(self.plug.watts, 4)

    def test_entity_numeric_state_and_unavailable(self):
        feed = Feed(self.plug, PowerModel(), self.clock)
        feed.entity(state="12.5")
        self.assertRaises(UnreadableValue, feed.entity, state="unavailable")
        self.assertEqual(self.plug.watts, 12.5)

    def test_entity_power_keypath(self):
        feed = Feed(self.plug, PowerModel(), self.clock, uses_power=True)
        feed.entity(state="on", power=99)
        self.assertEqual(self.plug.watts, 99)
        self.assertRaises(UnreadableValue, feed.entity, state="on")
        self.assertEqual(self.plug.watts, 99)

    def test_topic_semantics(self):
        model = PowerModel(max_watts=60, attribute_max=100, on_state_value="on")
        feed = Feed(self.plug, model, self.clock, uses_attribute=True)
        feed.attribute(50)
        self.assertEqual(self.plug.watts, 30)
        feed.state("off")
        self.assertEqual(self.plug.watts, 0)
        feed.attribute(100)           # while off: remembered, not reported
        self.assertEqual(self.plug.watts, 0)
        feed.state("on")              # the last attribute-derived watts stand
        self.assertEqual(self.plug.watts, 60)

    def test_state_on_without_attribute_is_max_watts(self):
        feed = Feed(self.plug, PowerModel(max_watts=25, on_state_value="on"), self.clock,
                    uses_power=True)
        feed.state("on")
        self.assertEqual(self.plug.watts, 25)
        self.assertRaises(UnreadableValue, feed.state, "17")   # numeric state only without power topic
        feed.power("17")
        self.assertEqual(self.plug.watts, 17)

    def test_timeout(self):
        feed = Feed(self.plug, PowerModel(off_usage=1), self.clock, timeout=30)
        feed.power(100)
        self.clock.advance(29)
        self.assertEqual(self.plug.watts, 100)
        feed.power(80)                # an update restarts the timer
        self.clock.advance(29)
        self.assertEqual(self.plug.watts, 80)
        self.clock.advance(2)
        self.assertEqual((self.plug.watts, self.plug.on), (1, False))
        feed.power(5)
        feed.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class StrictNumberTests(unittest.TestCase):
    """Numeric text is plain ASCII decimal or scientific notation, from every source."""

    def test_plain_decimal_and_scientific(self):
        for text in ("42", " 12.5 ", "-3", "+7", ".5", "1.", "1e3", "2.5E-2", b"17", b"1e2"):
            self.assertEqual(number(text), float(text), text)

    def test_what_float_reads_but_we_do_not(self):
        for text in ("1_000", b"1_000", "١٢٣", "１２", "inf", "-Infinity", "nan", "0x10", "",
                     "12 W"):
            with self.assertRaises(UnreadableValue, msg=repr(text)):
                number(text)

    def test_the_message_quotes_a_short_excerpt(self):
        with self.assertRaises(UnreadableValue) as caught:
            number("x" * 10_000_000)
        message = str(caught.exception)
        self.assertLess(len(message), 300)
        self.assertIn("(10000000 characters)", message)

    def test_config_numbers_are_as_strict(self):
        from senselink.config import ConfigError, load_text
        for text in ("'1_000'", "'١٢٣'"):
            with self.assertRaises(ConfigError):
                load_text(f"sources:\n- static:\n    plugs:\n    - a: {{max_watts: {text}}}\n", "n.yml")


class StateWordTests(unittest.TestCase):
    """How JSON booleans and numbers compare with on_state_value / off_state_value."""

    def test_text_compares_exactly(self):
        self.assertTrue(means("on", "on"))
        self.assertFalse(means("ON", "on"))
        self.assertFalse(means("true", "on"))

    def test_json_booleans_mean_truth_words(self):
        for word in ("true", "on", "yes", "True", "ON"):
            self.assertTrue(means(True, word), word)
            self.assertFalse(means(False, word), word)
        for word in ("false", "off", "no", "Off"):
            self.assertTrue(means(False, word), word)
            self.assertFalse(means(True, word), word)
        self.assertFalse(means(True, "heat"))

    def test_json_one_and_zero_mean_true_and_false(self):
        self.assertTrue(means(1, "true"))
        self.assertTrue(means(0, "false"))
        self.assertTrue(means(1.0, "TRUE"))
        self.assertFalse(means(1, "false"))
        self.assertFalse(means(1, "on"))          # only JSON's own spelling for numbers
        self.assertTrue(means(3, "3"))            # other numbers compare as text
        self.assertFalse(means(2, "true"))

    def test_output_1_with_on_state_value_true_is_on(self):
        clock = Clock()
        p = plug(clock)
        model = PowerModel(max_watts=60, on_state_value="true", off_state_value="false")
        feed = Feed(p, model, clock)
        feed.entity(state=1)
        self.assertEqual((p.watts, p.on), (60.0, True))     # not 1 W
        feed.entity(state=0)
        self.assertEqual((p.watts, p.on), (0.0, False))
        feed.entity(state=True)
        self.assertEqual(p.watts, 60.0)


class AliasTests(unittest.TestCase):
    def test_control_characters_are_errors_long_names_warnings(self):
        from senselink.config import ConfigError, load_text
        for name in ('"a\\0b"', '"tab\\there"', '"bell\\a"', '"del\\x7f"'):
            with self.assertRaises(ConfigError) as caught:
                load_text(f"sources:\n- static:\n    plugs:\n    - a: {{alias: {name}}}\n", "a.yml")
            self.assertIn("a.yml:4: sources[0].static.plugs[0].a.alias: expected a name without "
                          "control characters", str(caught.exception))
        config = load_text("sources:\n- static:\n    plugs:\n    - a: {alias: " + "x" * 32
                           + ", mac: '53:75:31:00:00:01'}\n", "a.yml")
        self.assertEqual(len(config.warnings), 1)
        self.assertIn("has 32 characters; the Kasa app allows 31", config.warnings[0])
