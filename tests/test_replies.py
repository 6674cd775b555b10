"""The Sense reply cache: cached replies, re-encoded only for plugs that changed."""

import json

from twisted.internet import task
from twisted.trial import unittest

from senselink.kasa import messages
from senselink.plughub import PlugHub
from senselink.replies import SenseReplyCache
from tests.energy.helpers import at, setup_plugs


class SenseReplyTests(unittest.TestCase):
    def test_total_in_sense_reply_follows_on_a_coarse_schedule(self):
        clock = task.Clock()
        plugs, meter = setup_plugs(clock, at(2026, 11, 26, 8, 0))
        cache = SenseReplyCache(total_kwh=meter.total_kwh)
        PlugHub(plugs).subscribe(changed=cache.changed, replaced=cache.replace)
        heater = plugs["heater"]
        first = cache.reply(heater)
        clock.advance(1)
        self.assertIs(cache.reply(heater), first)          # cached: no rebuild per request
        clock.advance(60)
        cache.refresh_totals()
        refreshed = json.loads(messages.decrypt(cache.reply(heater)))
        self.assertAlmostEqual(refreshed["emeter"]["get_realtime"]["total"],
                               120.0 * 61 / 3600 / 1000, places=6)


class CacheTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.plugs, self.meter = setup_plugs(self.clock, at(2026, 11, 26, 8, 0))
        self.cache = SenseReplyCache(total_kwh=self.meter.total_kwh)
        self.hub = PlugHub(self.plugs)
        self.hub.subscribe(changed=self.cache.changed, replaced=self.cache.replace)

    def test_replies_are_the_encoded_sense_replies(self):
        replies = [json.loads(messages.decrypt(r)) for r in self.cache.sense_replies()]
        self.assertEqual([r["system"]["get_sysinfo"]["alias"] for r in replies],
                         ["heater", "lamp", "media"])       # tv is in the aggregate media
        plug = self.plugs["heater"]
        expected = messages.sense_reply(alias=plug.alias, mac=plug.mac, device_id=plug.device_id,
                                        power=plug.watts, voltage=plug.voltage, on=plug.on,
                                        total_kwh=0.0)
        self.assertEqual(replies[0], expected)

    def test_kept_until_a_plug_changes_and_only_that_plug_is_encoded_again(self):
        first = self.cache.sense_replies()
        self.assertIs(self.cache.sense_replies(), first)
        self.plugs["tv"].set_power(90.0)           # changes tv and its aggregate, media
        second = self.cache.sense_replies()
        self.assertIsNot(second, first)
        self.assertIs(second[0], first[0])         # heater: the same bytes object
        self.assertIs(second[1], first[1])         # lamp
        self.assertNotEqual(second[2], first[2])   # media
        media = json.loads(messages.decrypt(second[2]))
        self.assertEqual(media["emeter"]["get_realtime"]["power"], 90.0)

    def test_a_replaced_plug_set_is_no_longer_observed(self):
        old = self.plugs
        plugs, _ = setup_plugs(self.clock)
        self.hub.replace(plugs)
        self.assertFalse([p for p in old if self.cache.changed in p.observers])
        self.assertTrue(all(self.cache.changed in p.observers for p in plugs))
        replies = self.cache.sense_replies()
        old["heater"].set_power(5.0)
        self.assertIs(self.cache.sense_replies(), replies)

    def test_skip_rate_is_applied_per_request(self):
        self.plugs["lamp"].skip_rate = 1
        counts = [len(self.cache.sense_replies()) for _ in range(4)]
        self.assertEqual(counts, [3, 2, 3, 2])

    def test_encoders_are_kept_only_for_the_plugs_served(self):
        self.cache.sense_replies()
        for _ in range(3):                 # reloads that rebuild every plug under its id
            plugs, _ = setup_plugs(self.clock)
            self.cache.replace(plugs)
            self.cache.sense_replies()
        self.assertEqual(set(self.cache.encoders), set(plugs.reported))
