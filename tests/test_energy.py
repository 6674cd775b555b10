"""Energy counters: integration with task.Clock, day and month roll-over, the state file."""

import json
import os
from datetime import datetime, timezone

from twisted.internet import task
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from senselink import energy
from senselink.energy import EnergyMeter, EnergyService, PlugEnergy
from senselink.replies import SenseReplyCache
from senselink.kasa import messages
from senselink.plugs import AggregatePlug, Plug, PlugSet

UTC = timezone.utc


def at(*args):
    """Epoch seconds of a UTC date and time."""
    return datetime(*args, tzinfo=UTC).timestamp()


def plug(plug_id, clock, watts=0.0, cls=Plug):
    return cls(plug_id, mac="53:75:31:00:00:%02X" % (len(plug_id) % 256),
               device_id="0" * 40, kind="mutable", clock=clock, watts=watts)


def setup_plugs(clock, start=None):
    if start is not None:
        clock.advance(start)
    heater = plug("heater", clock, 120.0)
    lamp = plug("lamp", clock, 0.0)
    tv = plug("tv", clock, 0.0)
    media = plug("media", clock, cls=AggregatePlug)
    media.add(tv)
    plugs = PlugSet([heater, lamp, tv, media])
    meter = EnergyMeter(clock, tz=UTC)
    meter.watch(plugs)
    return plugs, meter


def capture_log(testcase):
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def texts(events):
    from twisted.logger import formatEvent
    return [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("senselink.energy")]


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


class SenseReplyTests(unittest.TestCase):
    def test_total_in_sense_reply_follows_on_a_coarse_schedule(self):
        clock = task.Clock()
        plugs, meter = setup_plugs(clock, at(2026, 11, 26, 8, 0))
        cache = SenseReplyCache(plugs, meter.total_kwh)
        heater = plugs["heater"]
        first = cache.reply(heater)
        clock.advance(1)
        self.assertIs(cache.reply(heater), first)          # cached: no rebuild per request
        clock.advance(60)
        cache.refresh_totals()
        refreshed = json.loads(messages.decrypt(cache.reply(heater)))
        self.assertAlmostEqual(refreshed["emeter"]["get_realtime"]["total"],
                               120.0 * 61 / 3600 / 1000, places=6)


class StateFileTests(unittest.TestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "state.json")
        self.clock = task.Clock()
        self.clock.advance(at(2026, 11, 26, 8, 0))

    def start(self):
        plugs, meter = setup_plugs(self.clock)
        service = EnergyService(meter, self.path, self.clock)
        service.startService()
        return plugs, meter, service

    def test_round_trip(self):
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.assertTrue(any("No energy state file" in t for t in texts(events)))
        plugs["tv"].set_power(60.0)
        self.clock.advance(1800)
        service.stopService()
        self.assertEqual(service.saves, 3)    # at start, one periodic (the clock jumped 30 min), on stop
        with open(self.path) as f:
            saved = json.load(f)
        self.assertEqual(saved["version"], energy.STATE_VERSION)
        self.assertAlmostEqual(saved["plugs"]["heater"]["total_wh"], 60.0)
        self.assertEqual(saved["plugs"]["heater"]["days"], {"2026-11-26": 60.0})
        self.assertEqual(sorted(os.listdir(self.dir)), ["state.json"])   # no temporary files

        plugs2, meter2, service2 = self.start()
        self.addCleanup(service2.stopService)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["heater"]), 0.06)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["media"]), 0.03)
        self.assertEqual(meter2["heater"].day_energy(2026, 11), [(26, 0.06)])
        self.clock.advance(1800)
        self.assertAlmostEqual(meter2.total_kwh(plugs2["heater"]), 0.12)

    def test_saved_every_few_minutes(self):
        plugs, meter, service = self.start()
        self.addCleanup(service.stopService)
        self.assertEqual(service.saves, 1)     # at start
        self.clock.advance(energy.SAVE_INTERVAL - 1)
        self.assertEqual(service.saves, 1)
        self.clock.advance(1)
        self.assertEqual(service.saves, 2)
        with open(self.path) as f:
            self.assertAlmostEqual(json.load(f)["plugs"]["heater"]["total_wh"],
                                   120.0 * energy.SAVE_INTERVAL / 3600)

    def test_corrupt_file_is_logged_kept_aside_and_counters_start_fresh(self):
        for garbage in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"version": 99, "plugs": {}}',
                        b'{"version": 1}'):
            with open(self.path, "wb") as f:
                f.write(garbage)
            events = capture_log(self)
            plugs, meter, service = self.start()
            self.assertEqual(meter.total_kwh(plugs["heater"]), 0.0)
            self.assertTrue(any("unusable" in t and "start at zero" in t
                                for t in texts(events)), garbage)
            with open(self.path + ".corrupt", "rb") as f:
                self.assertEqual(f.read(), garbage)
            self.clock.advance(60)
            service.stopService()           # a fresh, valid file replaces it
            with open(self.path) as f:
                self.assertAlmostEqual(json.load(f)["plugs"]["heater"]["total_wh"], 2.0)
            os.unlink(self.path)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_unusable_plug_entry_is_skipped(self):
        state = {"version": 1, "saved": 0, "plugs": {
            "heater": {"total_wh": -5, "days": {}, "months": {}},
            "lamp": {"total_wh": 7.0, "days": {"2026-11-26": 7.0}, "months": {"2026-11": 7.0}},
            "tv": {"total_wh": 1.0, "days": {"yesterday": 1.0}, "months": {}},
            "gone": {"total_wh": 1.0, "days": {}, "months": {}},
        }}
        with open(self.path, "w") as f:
            json.dump(state, f)
        events = capture_log(self)
        plugs, meter, service = self.start()
        self.addCleanup(service.stopService)
        self.assertEqual(meter.total_kwh(plugs["heater"]), 0.0)
        self.assertEqual(meter.total_kwh(plugs["tv"]), 0.0)
        self.assertAlmostEqual(meter.total_kwh(plugs["lamp"]), 0.007)
        self.assertEqual(len([t for t in texts(events) if "are unusable" in t]), 2)

    def test_unwritable_state_file_is_logged_not_raised(self):
        self.path = os.path.join(self.dir, "missing-dir", "state.json")
        events = capture_log(self)
        plugs, meter, service = self.start()
        for _ in range(3):
            self.clock.advance(energy.SAVE_INTERVAL)
        self.assertEqual(service.saves, 0)
        failures = [t for t in texts(events) if "Cannot write energy state file" in t]
        self.assertEqual(len(failures), 1)              # once, not every few minutes
        os.makedirs(os.path.dirname(self.path))
        self.clock.advance(energy.SAVE_INTERVAL)
        self.assertEqual(service.saves, 1)
        self.assertTrue(any("written again" in t for t in texts(events)))
        service.stopService()


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
