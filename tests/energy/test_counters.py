"""Energy counters: integration with task.Clock, day and month roll-over."""

from twisted.internet import task
from twisted.trial import unittest

from senselink import energy
from senselink.energy import PlugEnergy
from tests.energy.helpers import UTC, at, plug, setup_plugs


class IntegrationTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.plugs, self.meter = setup_plugs(self.clock, at(2026, 11, 26, 8, 0))

    def test_120_watts_for_30_minutes(self):
        self.clock.advance(30 * 60)
        self.assertAlmostEqual(self.meter.total_kwh(self.plugs["heater"]), 0.06, places=9)
        self.assertEqual(self.meter.total_kwh(self.plugs["lamp"]), 0.0)

    def test_power_changes_are_integrated_exactly(self):
        lamp = self.plugs["lamp"]
        lamp.set_power(100.0)
        self.clock.advance(3600)
        lamp.set_power(50.0)
        self.clock.advance(1800)
        lamp.set_power(0.0)
        self.clock.advance(7200)
        self.assertAlmostEqual(self.meter.total_kwh(lamp), 0.125, places=9)

    def test_aggregate_counts_its_elements(self):
        self.plugs["tv"].set_power(90.0, True)
        self.clock.advance(3600)
        self.plugs["tv"].set_power(30.0, True)
        self.clock.advance(3600)
        self.assertAlmostEqual(self.meter.total_kwh(self.plugs["media"]), 0.12, places=9)
        self.assertAlmostEqual(self.meter.total_kwh(self.plugs["tv"]), 0.12, places=9)

    def test_on_time(self):
        counter = self.meter["lamp"]
        self.assertEqual(counter.on_time(), 0)
        self.plugs["lamp"].set_power(5.0)
        self.clock.advance(42)
        self.assertEqual(counter.on_time(), 42)
        self.plugs["lamp"].set_power(6.0)
        self.clock.advance(8)
        self.assertEqual(counter.on_time(), 50)
        self.plugs["lamp"].set_power(0.0, False)
        self.assertEqual(counter.on_time(), 0)

    def test_clock_going_backwards_books_nothing(self):
        counter = self.meter["heater"]
        counter.advance(self.clock.seconds() - 3600)
        self.assertEqual(counter.total_wh, 0.0)
        self.assertEqual(counter.days, {})


class RollOverTests(unittest.TestCase):
    def test_day_roll_over_splits_at_midnight(self):
        clock = task.Clock()
        plugs, meter = setup_plugs(clock, at(2026, 11, 26, 23, 30))
        plugs["lamp"].set_power(1000.0)
        clock.advance(3600)
        counter = meter["lamp"]
        counter.advance()
        self.assertEqual(counter.day_energy(2026, 11), [(26, 0.5), (27, 0.5)])
        self.assertEqual(counter.month_energy(2026), [(11, 1.0)])
        self.assertAlmostEqual(meter.total_kwh(plugs["lamp"]), 1.0)

    def test_month_and_year_roll_over(self):
        clock = task.Clock()
        plugs, meter = setup_plugs(clock, at(2026, 12, 31, 23, 0))
        plugs["lamp"].set_power(500.0)
        clock.advance(3 * 3600)          # 23:00 to 02:00 next year
        counter = meter["lamp"]
        counter.advance()
        self.assertEqual(counter.day_energy(2026, 12), [(31, 0.5)])
        self.assertEqual(counter.day_energy(2027, 1), [(1, 1.0)])
        self.assertEqual(counter.month_energy(2026), [(12, 0.5)])
        self.assertEqual(counter.month_energy(2027), [(1, 1.0)])

    def test_long_gap_spans_days_and_old_days_are_pruned(self):
        clock = task.Clock()
        plugs, meter = setup_plugs(clock, at(2026, 1, 1, 0, 0))
        plugs["lamp"].set_power(10.0)
        clock.advance(500 * 86400)
        counter = meter["lamp"]
        counter.advance()
        self.assertEqual(len(counter.days), energy.KEEP_DAYS + 1)
        self.assertAlmostEqual(counter.total_kwh, 120.0)
        self.assertAlmostEqual(sum(counter.months.values()) / 1000.0, 120.0)


class PlugEnergyUnitTests(unittest.TestCase):
    def test_check_plug_state(self):
        good = {"total_wh": 1, "days": {"2026-11-26": 1}, "months": {"2026-11": 1}}
        self.assertEqual(energy.check_plug_state(good), "")
        for bad in (None, [], {"total_wh": float("nan"), "days": {}, "months": {}},
                    {"total_wh": True, "days": {}, "months": {}},
                    {"total_wh": 1, "days": [], "months": {}},
                    {"total_wh": 1, "days": {"2026-13-01": 1}, "months": {}},
                    {"total_wh": 1, "days": {}, "months": {"2026-11": "x"}}):
            self.assertNotEqual(energy.check_plug_state(bad), "", bad)

    def test_counter_without_power_books_nothing(self):
        clock = task.Clock()
        counter = PlugEnergy(plug("p", clock), clock, UTC)
        clock.advance(86400)
        counter.advance()
        self.assertEqual((counter.total_wh, counter.days, counter.months), (0.0, {}, {}))
