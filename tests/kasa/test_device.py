"""The strip device as pure protocol: requests in, reply dicts out."""

import json
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from senselink.kasa import device
from senselink.kasa.device import ChildState, HS300Strip, StripChildren

# The sysinfo keys of a real HS300 (hardware 1.0, firmware 1.0.21) and of its children.
HS300_KEYS = {"alias", "child_num", "children", "deviceId", "err_code", "feature", "hwId",
              "hw_ver", "latitude_i", "led_off", "longitude_i", "mac", "mic_type", "model",
              "oemId", "rssi", "status", "sw_ver", "updating"}
HS300_CHILD_KEYS = {"alias", "id", "next_action", "on_time", "state"}
DEVICE_ID = "AB" * 20


class FakeSource(StripChildren):
    def __init__(self, children, now=None):
        self._children = children
        self._now = now or datetime(2026, 11, 26, 7, 30, 15, tzinfo=timezone.utc)
        self.days = {0: [(25, 1.5), (26, 0.25)], 1: [(26, 0.5)]}
        self.months = {0: [(10, 10.0), (11, 1.75)], 1: [(11, 0.5)]}

    def children(self):
        return self._children

    def day_energy(self, index, year, month):
        return self.days.get(index, []) if (year, month) == (2026, 11) else []

    def month_energy(self, index, year):
        return self.months.get(index, []) if year == 2026 else []

    def now(self):
        return self._now


def make(now=None):
    children = [ChildState("Fridge", True, 120.5, 120.0, on_time=30, total_kwh=1.25),
                ChildState("Lamp", False, 0.0, 230.0, on_time=0, total_kwh=0.5)]
    return HS300Strip(FakeSource(children, now), alias="My Strip", mac="53:75:31:aa:bb:cc",
                       device_id=DEVICE_ID)


def child(n):
    return {"context": {"child_ids": [DEVICE_ID + f"{n:02d}"]}}


class SysinfoTests(unittest.TestCase):
    def test_shape_matches_a_real_hs300(self):
        info = make().handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]
        self.assertEqual(HS300_KEYS - set(info), set())
        self.assertEqual(set(info["children"][0]), HS300_CHILD_KEYS)
        self.assertEqual(info["err_code"], 0)
        self.assertEqual(info["mic_type"], "IOT.SMARTPLUGSWITCH")
        self.assertIn("ENE", info["feature"].split(":"))
        self.assertEqual(info["alias"], "My Strip")
        self.assertEqual(info["mac"], "53:75:31:AA:BB:CC")
        self.assertEqual(info["deviceId"], DEVICE_ID)
        self.assertEqual(info["child_num"], 2)
        fridge, lamp = info["children"]
        self.assertEqual(fridge, {"id": DEVICE_ID + "00", "state": 1, "alias": "Fridge",
                                  "on_time": 30, "next_action": {"type": -1}})
        self.assertEqual((lamp["id"], lamp["state"], lamp["on_time"]), (DEVICE_ID + "01", 0, 0))

    def test_sysinfo_with_context_is_the_whole_strip(self):
        reply = make().handle({**child(1), "system": {"get_sysinfo": {}}})
        self.assertEqual(reply["system"]["get_sysinfo"]["child_num"], 2)
        self.assertNotIn("context", reply)


class EmeterTests(unittest.TestCase):
    def test_child_realtime_in_device_units(self):
        realtime = make().handle({**child(0), "emeter": {"get_realtime": {}}})
        self.assertEqual(realtime["emeter"]["get_realtime"],
                         {"power_mw": 120500, "voltage_mv": 120000, "current_ma": 1004,
                          "total_wh": 1250, "err_code": 0})

    def test_short_child_id(self):
        reply = make().handle({"context": {"child_ids": ["01"]}, "emeter": {"get_realtime": {}}})
        self.assertEqual(reply["emeter"]["get_realtime"]["voltage_mv"], 230000)

    def test_strip_realtime_is_the_sum(self):
        realtime = make().handle({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
        self.assertEqual(realtime["power_mw"], 120500)
        self.assertEqual(realtime["total_wh"], 1750)
        self.assertEqual(realtime["voltage_mv"], 175000)

    def test_daystat_and_monthstat_per_child(self):
        reply = make().handle({**child(0), "emeter": {
            "get_daystat": {"year": 2026, "month": 11}, "get_monthstat": {"year": 2026}}})
        emeter = reply["emeter"]
        self.assertEqual(emeter["get_daystat"], {"day_list": [
            {"year": 2026, "month": 11, "day": 25, "energy_wh": 1500},
            {"year": 2026, "month": 11, "day": 26, "energy_wh": 250}], "err_code": 0})
        self.assertEqual(emeter["get_monthstat"], {"month_list": [
            {"year": 2026, "month": 10, "energy_wh": 10000},
            {"year": 2026, "month": 11, "energy_wh": 1750}], "err_code": 0})
        empty = make().handle({**child(1), "emeter": {"get_daystat": {"year": 2020, "month": 1}}})
        self.assertEqual(empty["emeter"]["get_daystat"], {"day_list": [], "err_code": 0})

    def test_strip_daystat_sums_children(self):
        reply = make().handle({"emeter": {"get_daystat": {"year": 2026, "month": 11}}})
        days = reply["emeter"]["get_daystat"]["day_list"]
        self.assertEqual([(d["day"], d["energy_wh"]) for d in days], [(25, 1500), (26, 750)])

    def test_bad_arguments_and_unknown_child(self):
        strip = make()
        for args in ({}, {"year": "2026", "month": 1}, {"year": 2026, "month": 13}, None,
                     {"year": True, "month": 1}):
            reply = strip.handle({"emeter": {"get_daystat": args}})
            self.assertEqual(reply["emeter"]["get_daystat"]["err_code"], -3, args)
        for ids in (["nope"], [DEVICE_ID + "07"], [], [7], "x"):
            reply = strip.handle({"context": {"child_ids": ids}, "emeter": {"get_realtime": {}}})
            self.assertEqual(reply["emeter"]["get_realtime"]["err_code"], -3, ids)


class ModuleTests(unittest.TestCase):
    def test_time_from_the_host_clock(self):
        reply = make().handle({"time": {"get_time": {}, "get_timezone": {}}})["time"]
        self.assertEqual(reply["get_time"], {"year": 2026, "month": 11, "mday": 26, "hour": 7,
                                             "min": 30, "sec": 15, "err_code": 0})
        self.assertEqual(reply["get_timezone"], {"index": 38, "err_code": 0})

    def test_timezone_index_agrees_with_local_time(self):
        berlin = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(hours=1)))
        get_time, tz = device.time_fields(berlin)
        self.assertEqual((get_time["hour"], tz["index"]), (9, 45))
        self.assertIsInstance(tz["index"], int)
        odd = datetime(2026, 1, 5, 9, 0, tzinfo=timezone(timedelta(minutes=20)))
        get_time, tz = device.time_fields(odd)
        self.assertEqual((get_time["hour"], get_time["min"], tz["index"]), (8, 40, 38))

    def test_unconfigured_plug_modules(self):
        reply = make().handle({
            "schedule": {"get_rules": {}, "get_next_action": {}, "get_realtime": {},
                         "get_daystat": {"year": 2026, "month": 11},
                         "get_monthstat": {"year": 2026}},
            "anti_theft": {"get_rules": {}, "get_next_action": {}},
            "cnCloud": {"get_info": {}},
        })
        self.assertEqual(reply["schedule"]["get_rules"]["rule_list"], [])
        self.assertEqual(reply["schedule"]["get_next_action"], {"type": -1, "err_code": 0})
        self.assertEqual(reply["schedule"]["get_daystat"], {"day_list": [], "err_code": 0})
        self.assertEqual(reply["schedule"]["get_realtime"]["err_code"], -2)
        self.assertEqual(reply["anti_theft"]["get_rules"]["rule_list"], [])
        cloud = reply["cnCloud"]["get_info"]
        self.assertEqual((cloud["binded"], cloud["cld_connection"], cloud["err_code"]), (0, 0, 0))

    def test_unknown_module_and_method(self):
        reply = make().handle({"netif": {"get_scaninfo": {"refresh": 1}},
                               "smartlife.iot.dimmer": {"set_brightness": {}},
                               "system": {"get_nothing": {}}})
        self.assertEqual(reply["netif"], {"err_code": -1, "err_msg": "module not support"})
        self.assertEqual(reply["smartlife.iot.dimmer"]["err_msg"], "module not support")
        self.assertEqual(reply["system"]["get_nothing"],
                         {"err_code": -2, "err_msg": "member not support"})

    def test_state_changing_requests_are_refused(self):
        strip = make()
        before = strip.handle({"system": {"get_sysinfo": {}}})
        requests = [
            {**child(0), "system": {"set_relay_state": {"state": 0}}},
            {**child(1), "system": {"set_dev_alias": {"alias": "x"}}},
            {"system": {"set_dev_alias": {"alias": "x"}}},
            {"system": {"reboot": {"delay": 1}}},
            {"system": {"reset": {"delay": 1}}},
            {"system": {"set_mac_addr": {"mac": "00:00:00:00:00:01"}}},
            {"system": {"set_led_off": {"off": 1}}},
            {"emeter": {"erase_emeter_stat": {}}},
            {"time": {"set_timezone": {"index": 1}}},
            {"schedule": {"add_rule": {}}},
            {"cnCloud": {"bind": {"username": "u", "password": "p"}}},
        ]
        for request in requests:
            reply = strip.handle(request)
            (module,) = [m for m in request if m != "context"]
            (method,) = request[module]
            answer = reply[module][method]
            self.assertEqual(answer["err_code"], -3, request)
            self.assertIn("read-only", answer["err_msg"])
        self.assertEqual(strip.handle({"system": {"get_sysinfo": {}}}), before)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=8)
MODULES = st.sampled_from(["system", "emeter", "time", "schedule", "anti_theft",
                           "count_down", "cnCloud", "netif", "context"])
METHODS = st.sampled_from(["get_sysinfo", "get_realtime", "get_daystat", "get_monthstat",
                           "get_time", "get_timezone", "get_rules", "get_next_action",
                           "get_info", "set_relay_state", "reboot", "child_ids", "x"])


class DeviceProperties(unittest.TestCase):
    """Any request (as JSON) gets a reply dict, never an exception, with one entry per module."""

    @settings(max_examples=100, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.dictionaries(MODULES, st.dictionaries(METHODS, JSON_VALUES, max_size=4)
                           | JSON_VALUES, max_size=5))
    def test_never_raises(self, request):
        reply = make().handle(request)
        self.assertEqual(set(reply), set(request) - {"context"})
        json.dumps(reply)
