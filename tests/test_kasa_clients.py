"""Real Kasa clients against the running daemon on loopback.

python-kasa (asyncio) runs on its own event loop in a helper thread; the
daemon runs on the trial reactor. Results come back as Deferreds with a
bounded timeout.
"""

import asyncio
import threading
from datetime import datetime, timezone

from twisted.internet import defer, reactor
from twisted.trial import unittest

from kasa import Discover, KasaException, Module
from kasa.device_type import DeviceType

from senselink.kasa import messages
from tests.support import (WAIT, free_port, sense, start_service, tcp_connect, udp_client,
                           wait_until, with_timeout)

PLUGS = """
sources:
- static:
    plugs:
    - NAS: {alias: "NAS Server", mac: "53:75:31:00:01:01", max_watts: 15.25}
    - TV: {alias: "TV", mac: "53:75:31:00:01:03", max_watts: 90}
    - Bar: {alias: "Soundbar", mac: "53:75:31:00:01:04", max_watts: 25}
- mutable:
    plugs:
    - Heater: {alias: "Space Heater", mac: "53:75:31:00:01:05", power: 750, voltage: 240}
- aggregate:
    plugs:
    - Media: {alias: "Media Center", mac: "53:75:31:00:01:06", elements: [TV, Bar]}
"""

REPORTED = {"NAS Server": "NAS", "Space Heater": "Heater", "Media Center": "Media"}


class AsyncioThread:
    """An asyncio event loop in a thread; coroutines run there, results come back as Deferreds."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="python-kasa",
                                       daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout=WAIT):
        d = defer.Deferred()

        def deliver(fire, value):
            if not d.called:
                fire(value)

        def done(future):
            if future.cancelled():
                reactor.callFromThread(deliver, d.errback, defer.CancelledError())
            elif future.exception() is not None:
                reactor.callFromThread(deliver, d.errback, future.exception())
            else:
                reactor.callFromThread(deliver, d.callback, future.result())

        future = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coroutine, timeout), self.loop)
        future.add_done_callback(done)
        return with_timeout(d, timeout + 2)

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class KasaClientTests(unittest.TestCase):
    interface = "127.0.0.1"

    def setUp(self):
        self.state_file = self.mktemp()
        # Kasa clients use one port for UDP and TCP, like a real device.
        self.service = start_service(self, f"state_file: {self.state_file}\n" + PLUGS,
                                     interface=self.interface, port=free_port())
        self.asyncio = AsyncioThread()
        self.devices = []
        self.addCleanup(self.close_clients)

    @defer.inlineCallbacks
    def close_clients(self):
        try:
            for device in self.devices:
                yield self.asyncio.run(device.disconnect())
            factory = self.service.tcp_factory
            yield wait_until(lambda: not factory.open)
        finally:
            self.asyncio.stop()

    def discover(self, host="127.0.0.1"):
        d = self.asyncio.run(Discover.discover_single(host, port=self.service.udp_port,
                                                      discovery_timeout=5, timeout=5))
        d.addCallback(self._keep)
        return d

    def _keep(self, device):
        self.devices.append(device)
        return device

    def update(self, device):
        return self.asyncio.run(device.update())

    def check_children(self, strip):
        self.assertEqual(len(strip.children), len(self.service.plugs.reported))
        for child in strip.children:
            plug = self.service.plugs[REPORTED[child.alias]]
            power = child.modules[Module.Energy].current_consumption
            self.assertTrue(abs(power - plug.watts) <= 0.01, (child.alias, power, plug.watts))
            self.assertEqual(child.is_on, plug.on)

    @defer.inlineCallbacks
    def test_discover_single_finds_a_strip_with_one_child_per_plug(self):
        strip = yield self.discover()
        self.assertEqual(strip.device_type, DeviceType.Strip)
        self.assertEqual(strip.alias, "SenseLink")
        aliases = [c["alias"] for c in strip.sys_info["children"]]
        self.assertEqual(aliases, ["NAS Server", "Space Heater", "Media Center"])
        self.assertEqual(self.service.responder.counters.requests.get("sense"), None)

    @defer.inlineCallbacks
    def test_update_twice_on_one_connection(self):
        strip = yield self.discover()
        yield self.update(strip)
        self.check_children(strip)
        yield self.update(strip)
        self.check_children(strip)
        self.assertEqual(sorted(c.alias for c in strip.children), sorted(REPORTED))
        self.assertEqual(self.service.tcp_factory.connections, 1)
        heater = [c for c in strip.children if c.alias == "Space Heater"][0]
        self.assertEqual(heater.modules[Module.Energy].voltage, 240)
        self.assertEqual(heater.device_id,
                         f"{strip.mac}_{self.service.strip.device_id}01")
        self.assertTrue(strip.is_on)
        # The time module answers from the host's clock, with a matching zone index.
        now = datetime.now(timezone.utc)
        self.assertLess(abs((strip.time - now).total_seconds()), 3600)
        self.assertEqual(strip.time.utcoffset(), datetime.now().astimezone().utcoffset())
        total = heater.modules[Module.Energy].consumption_total
        self.assertGreaterEqual(total, 0.0)

    @defer.inlineCallbacks
    def test_mutable_change_shows_on_next_update(self):
        strip = yield self.discover()
        yield self.update(strip)
        self.service.set_power("Heater", 1234.5)
        yield self.update(strip)
        self.check_children(strip)
        heater = [c for c in strip.children if c.alias == "Space Heater"][0]
        self.assertAlmostEqual(heater.modules[Module.Energy].current_consumption, 1234.5)
        self.service.set_power("Heater", 0, False)
        yield self.update(strip)
        self.assertFalse(heater.is_on)
        self.check_children(strip)

    @defer.inlineCallbacks
    def test_state_changing_requests_are_refused(self):
        strip = yield self.discover()
        yield self.update(strip)
        heater = [c for c in strip.children if c.alias == "Space Heater"][0]
        for attempt in (heater.turn_off(), strip.set_alias("Hacked"), heater.set_alias("x"),
                        strip.reboot()):
            yield self.assertFailure(self.asyncio.run(attempt), KasaException)
        yield self.update(strip)
        self.assertTrue(heater.is_on)
        self.assertEqual(heater.alias, "Space Heater")
        self.assertEqual(strip.alias, "SenseLink")
        self.assertEqual(self.service.plugs["Heater"].watts, 750)

    @defer.inlineCallbacks
    def test_raw_requests_over_tcp(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        strip_id = self.service.strip.device_id
        client.request({"context": {"child_ids": [strip_id + "00"]},
                        "system": {"set_relay_state": {"state": 0}}})
        client.request({"nonsense": {"get": {}}, "system": {"get_frobnicate": {}}})
        client.request({"context": {"child_ids": [strip_id + "02"]},
                        "emeter": {"get_realtime": {}}})
        refused, unknown, media = yield client.wait_for(3)
        self.assertEqual(refused["system"]["set_relay_state"]["err_code"], -3)
        self.assertEqual(unknown, {"nonsense": {"err_code": -1, "err_msg": "module not support"},
                                   "system": {"get_frobnicate": {"err_code": -2,
                                                             "err_msg": "member not support"}}})
        self.assertEqual(media["emeter"]["get_realtime"]["power_mw"], 115000)
        self.assertTrue(self.service.plugs["NAS"].on)
        self.assertFalse(client.closed.called)

    @defer.inlineCallbacks
    def test_sense_request_still_gets_one_hs110_datagram_per_plug(self):
        client = udp_client(self)
        client.send({"system": {"get_sysinfo": {}}}, self.service.udp_port)
        (discovery, addr), = yield client.wait_for(1)
        self.assertEqual(discovery["system"]["get_sysinfo"]["model"], "HS300(US)")
        self.assertEqual(addr, ("127.0.0.1", self.service.udp_port))
        sense(client, self.service.udp_port)
        replies = yield client.wait_for(1 + 3)
        hs110 = [r for r, _ in replies[1:]]
        self.assertEqual({r["system"]["get_sysinfo"]["model"] for r in hs110}, {"HS110(US)"})
        self.assertEqual({r["system"]["get_sysinfo"]["alias"] for r in hs110}, set(REPORTED))
        self.assertEqual({a for _, a in replies}, {("127.0.0.1", self.service.udp_port)})


class BroadcastDiscoveryTests(KasaClientTests):
    """Discovery by a broadcast to the loopback network's broadcast address.

    Linux delivers a datagram sent to 127.255.255.255 only to sockets bound to
    the wildcard address, so this daemon listens on 0.0.0.0 (an ephemeral port;
    all traffic stays on loopback).
    """

    interface = "0.0.0.0"

    @defer.inlineCallbacks
    def test_discovery_by_loopback_broadcast(self):
        found = yield self.asyncio.run(Discover.discover(
            target="127.255.255.255", port=self.service.udp_port, discovery_timeout=2,
            discovery_packets=2, timeout=5))
        self.devices.extend(found.values())
        self.assertIn("127.0.0.1", found)
        strip = found["127.0.0.1"]
        self.assertEqual(strip.device_type, DeviceType.Strip)
        self.assertEqual([c["alias"] for c in strip.sys_info["children"]],
                         ["NAS Server", "Space Heater", "Media Center"])
        yield self.update(strip)
        self.check_children(strip)

    # The inherited tests run once more against the wildcard listener.


class KasaClientsOffTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_only_the_sense_request_is_answered(self):
        service = start_service(self, f"kasa_clients: false\nstate_file: {self.mktemp()}\n"
                                + PLUGS)
        self.assertIsNone(service.strip)
        client = udp_client(self)
        client.send({"system": {"get_sysinfo": {}}}, service.udp_port)
        sense(client, service.udp_port)
        replies = yield client.wait_for(3)
        self.assertEqual({r["system"]["get_sysinfo"]["model"] for r, _ in replies}, {"HS110(US)"})
        self.assertEqual(service.responder.counters.ignored.get("unsupported"), 1)
        tcp = yield tcp_connect(self, service.tcp_port)
        tcp.request({"system": {"get_sysinfo": {}}})
        tcp.request(messages.SENSE_REQUEST)
        frames = yield tcp.wait_for(3)
        self.assertEqual({f["system"]["get_sysinfo"]["model"] for f in frames}, {"HS110(US)"})


class DeviceConfigTests(unittest.TestCase):
    def test_configured_identity(self):
        service = start_service(self, "device: {alias: Garage, mac: '53:75:31:AB:CD:EF'}\n"
                                f"state_file: {self.mktemp()}\n" + PLUGS)
        strip = service.strip
        self.assertEqual((strip.alias, strip.mac), ("Garage", "53:75:31:AB:CD:EF"))
        self.assertEqual(len(strip.device_id), 40)
        info = strip.sysinfo()
        self.assertEqual(info["children"][0]["id"], strip.device_id + "00")

    def test_default_identity_is_stable(self):
        a = start_service(self, f"state_file: {self.mktemp()}\n" + PLUGS).strip
        b = start_service(self, f"state_file: {self.mktemp()}\n" + PLUGS).strip
        self.assertEqual((a.alias, a.mac, a.device_id), (b.alias, b.mac, b.device_id))
        self.assertEqual(a.alias, "SenseLink")

    def test_bad_device_config_names_file_line_and_key(self):
        from senselink.config import ConfigError
        from tests.support import config_from_text
        for text, expected in (("device: {mac: nope}\n", "device: mac: expected a MAC"),
                               ("device: {colour: red}\n", "device: unknown key 'colour'"),
                               ("device: [1]\n", "device: expected a mapping"),
                               ("kasa_clients: maybe\n", "kasa_clients: expected true or false")):
            e = self.assertRaises(ConfigError, config_from_text, text + PLUGS)
            self.assertIn(":1: " + expected, str(e))


class ResponderRoutingTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_target_gets_sense_replies_kasa_clients_get_their_own(self):
        requester = udp_client(self, interface="127.0.0.2")
        port = requester.transport.getHost().port
        target = udp_client(self, interface="127.0.0.3", port=port)
        service = start_service(self, f"target: 127.0.0.3\nstate_file: {self.mktemp()}\n"
                                + PLUGS)
        requester.send({"system": {"get_sysinfo": {}}}, service.udp_port)
        (reply, addr), = yield requester.wait_for(1)
        self.assertEqual(reply["system"]["get_sysinfo"]["child_num"], 3)
        sense(requester, service.udp_port)
        replies = yield target.wait_for(3)
        self.assertEqual({r["system"]["get_sysinfo"]["model"] for r, _ in replies}, {"HS110(US)"})
        self.assertEqual(len(requester.replies), 1)

    @defer.inlineCallbacks
    def test_refusals_are_logged_without_arguments(self):
        from twisted.logger import formatEvent, globalLogPublisher
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        service = start_service(self, f"state_file: {self.mktemp()}\n" + PLUGS)
        client = yield tcp_connect(self, service.tcp_port)
        client.request({"cnCloud": {"bind": {"username": "me@example.com",
                                             "password": "hunter2"}}})
        (reply,) = yield client.wait_for(1)
        self.assertEqual(reply["cnCloud"]["bind"]["err_code"], -3)
        lines = [formatEvent(e) for e in events]
        self.assertFalse([line for line in lines if "hunter2" in line or "me@example" in line])
        self.assertTrue(any("Refused cnCloud.bind from Kasa client 127.0.0.1" in line
                            for line in lines))


class EchoTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_replies_sent_back_are_never_answered(self):
        service = start_service(self, f"state_file: {self.mktemp()}\n" + PLUGS)
        strip = service.strip
        client = udp_client(self)
        echoes = [strip.handle({"system": {"get_sysinfo": {}}}),
                  strip.handle({"nonsense": {"get": {}}}),
                  strip.handle({"context": {"child_ids": ["00"]}, "emeter": {"get_realtime": {}}})]
        for echo in echoes:
            client.send(echo, service.udp_port)
        # In-order delivery on loopback: a reply to an echo would arrive before this one.
        client.send({"system": {"get_sysinfo": {}}}, service.udp_port)
        (reply, _), = yield client.wait_for(1)
        self.assertIn("children", reply["system"]["get_sysinfo"])
        self.assertEqual(service.responder.counters.ignored.get("echo"), 3)
        self.assertEqual(len(client.replies), 1)
