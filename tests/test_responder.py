"""The Kasa responder over real UDP and TCP sockets on 127.0.0.1."""

import json
import os
import struct

from twisted.internet import defer, reactor
from twisted.internet.error import DNSLookupError
from twisted.internet.task import deferLater
from twisted.trial import unittest

from senselink.kasa import cipher, messages
from senselink.responder import MAX_DATAGRAM, UNRESOLVED, Responder
from senselink.plugs import PlugSet
from senselink.replies import SenseReplyCache
from tests.support import sense, start_service, tcp_connect, udp_client, wait_until

PLUGS = """
# A test sets Heater: values set at run time must not reach the next test.
state_file: false
sources:
- static:
    plugs:
    - NAS: {alias: "NAS Server", mac: "53:75:31:00:00:01", max_watts: 15}
    - Fan: {alias: "Fan", mac: "53:75:31:00:00:02", max_watts: 5, skip_rate: 1}
    - TV: {alias: "TV", mac: "53:75:31:00:00:03", max_watts: 90}
    - Bar: {alias: "Soundbar", mac: "53:75:31:00:00:04", max_watts: 25}
- mutable:
    plugs:
    - Heater: {alias: "Heater", mac: "53:75:31:00:00:05", power: 0, voltage: 240}
- aggregate:
    plugs:
    - Media: {alias: "Media", mac: "53:75:31:00:00:06", elements: [TV, Bar]}
"""


def by_alias(replies):
    return {r["system"]["get_sysinfo"]["alias"]: r for r, _ in replies}


class SenseOverUDPTests(unittest.TestCase):
    def setUp(self):
        self.service = start_service(self, PLUGS)
        self.port = self.service.udp_port
        self.client = udp_client(self)

    @defer.inlineCallbacks
    def test_one_reply_per_reported_plug(self):
        sense(self.client, self.port)
        replies = yield self.client.wait_for(4)
        got = by_alias(replies)
        self.assertEqual(set(got), {"NAS Server", "Fan", "Heater", "Media"})
        nas = got["NAS Server"]
        self.assertEqual(nas["emeter"]["get_realtime"]["power"], 15)
        self.assertEqual(nas["emeter"]["get_realtime"]["voltage"], 120)
        self.assertEqual(nas["emeter"]["get_realtime"]["current"], 0.125)
        self.assertEqual(nas["emeter"]["get_realtime"]["err_code"], 0)
        self.assertIn("total", nas["emeter"]["get_realtime"])
        sysinfo = nas["system"]["get_sysinfo"]
        self.assertEqual(sysinfo["model"], "HS110(US)")
        self.assertEqual(sysinfo["mac"], "53:75:31:00:00:01")
        self.assertEqual(sysinfo["relay_state"], 1)
        self.assertEqual(len(sysinfo["deviceId"]), 40)
        self.assertEqual(got["Heater"]["system"]["get_sysinfo"]["relay_state"], 0)
        # Aggregate: the sum of its elements, which are not reported themselves.
        self.assertEqual(got["Media"]["emeter"]["get_realtime"]["power"], 115)
        # Replies come from the receiving socket.
        self.assertEqual({addr for _, addr in replies}, {("127.0.0.1", self.port)})

    @defer.inlineCallbacks
    def test_skip_rate(self):
        # Fan (skip_rate 1) answers the 1st and 3rd requests, not the 2nd.
        for _ in range(3):
            sense(self.client, self.port)
        replies = yield self.client.wait_for(4 + 3 + 4)
        aliases = [r["system"]["get_sysinfo"]["alias"] for r, _ in replies]
        self.assertEqual(aliases.count("Fan"), 2)
        self.assertEqual(aliases.count("NAS Server"), 3)

    @defer.inlineCallbacks
    def test_mutable_change_is_reported(self):
        sense(self.client, self.port)
        yield self.client.wait_for(4)
        self.service.set_power("Heater", 1200)
        sense(self.client, self.port)
        replies = yield self.client.wait_for(7)   # Fan skips the second request
        heater = by_alias(replies[4:])["Heater"]
        self.assertEqual(heater["emeter"]["get_realtime"]["power"], 1200)
        self.assertEqual(heater["emeter"]["get_realtime"]["current"], 5)
        self.assertEqual(heater["system"]["get_sysinfo"]["relay_state"], 1)

    def test_set_power_api_errors(self):
        self.assertRaises(KeyError, self.service.set_power, "Nope", 1)
        self.assertRaises(TypeError, self.service.set_power, "NAS", 1)
        self.assertRaises(ValueError, self.service.set_power, "Heater", -1)
        self.assertRaises(ValueError, self.service.set_power, "Heater", float("nan"))
        self.assertRaises(ValueError, self.service.set_power, "Heater", "lots")

    @defer.inlineCallbacks
    def test_aggregate_follows_elements(self):
        self.service.plugs["TV"].set_power(10.0, True)
        sense(self.client, self.port)
        replies = yield self.client.wait_for(4)
        self.assertEqual(by_alias(replies)["Media"]["emeter"]["get_realtime"]["power"], 35)

    @defer.inlineCallbacks
    def test_echo_and_garbage_are_ignored(self):
        echo = messages.sense_reply(alias="x", mac="53:75:31:00:00:09", device_id="0" * 40,
                                    power=1, voltage=120, on=True)
        bad = [
            messages.encode(echo),                          # an echoed reply
            os.urandom(200),                                # random bytes
            cipher.encrypt(b"[1, 2, 3]"),                   # JSON, not an object
            cipher.encrypt(b"42"),
            cipher.encrypt(b'{"emeter": null, "system": {"get_sysinfo": {}}}'),
            cipher.encrypt(b'{"emeter":{"get_realtime":{}}'),  # truncated
            b"",
            cipher.encrypt(b"{" + b" " * (MAX_DATAGRAM + 10) + b"}"),   # oversized
            os.urandom(65000),                              # a 64 KiB datagram
        ]
        for data in bad:
            self.client.send(data, self.port, encrypted=True)
        # Datagrams from one socket on loopback arrive in order: if any bad one
        # had been answered, its reply would come before the Sense replies.
        sense(self.client, self.port)
        replies = yield self.client.wait_for(4)
        self.assertEqual(set(by_alias(replies)), {"NAS Server", "Fan", "Heater", "Media"})
        counters = self.service.responder.counters
        self.assertEqual(counters.ignored.get("echo"), 1)
        self.assertGreaterEqual(counters.ignored.get("malformed"), 4)
        self.assertEqual(counters.ignored.get("oversized"), 2)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(len(self.client.replies), 4)

    @defer.inlineCallbacks
    def test_echoes_are_logged_once_a_minute_per_source(self):
        """A device that echoes every reply does not write a DEBUG line per datagram."""
        from twisted.logger import formatEvent, globalLogPublisher
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.service.responder.debug = True
        echo = messages.encode(messages.sense_reply(
            alias="x", mac="53:75:31:00:00:09", device_id="0" * 40, power=1, voltage=120,
            on=True))
        for _ in range(3):
            self.client.send(echo, self.port, encrypted=True)
        sense(self.client, self.port)                  # answered after the echoes
        yield self.client.wait_for(4)
        self.assertEqual(self.service.responder.counters.ignored.get("echo"), 3)
        lines = [formatEvent(e) for e in events]
        self.assertEqual(sum("Ignored an echoed reply" in line for line in lines), 1)


class TargetTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_replies_go_to_target_at_requester_port(self):
        # The requester is 127.0.0.2:P; the target 127.0.0.3 receives at port P.
        requester = udp_client(self, interface="127.0.0.2")
        port = requester.transport.getHost().port
        target = udp_client(self, interface="127.0.0.3", port=port)
        service = start_service(self, "target: 127.0.0.3\n" + PLUGS)
        sense(requester, service.udp_port)
        replies = yield target.wait_for(4)
        self.assertEqual(len(by_alias(replies)), 4)
        self.assertEqual(requester.replies, [])


class QuietTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_quiet_mode_never_answers(self):
        service = start_service(self, PLUGS, respond=False)
        loud = start_service(self, PLUGS)
        client = udp_client(self)
        sense(client, service.udp_port)
        yield wait_until(lambda: service.responder.counters.requests.get("sense") == 1)
        sense(client, loud.udp_port)
        replies = yield client.wait_for(4)
        self.assertEqual({addr[1] for _, addr in replies}, {loud.udp_port})
        self.assertEqual(service.responder.counters.requests, {"sense": 1})
        self.assertEqual(service.responder.counters.replies, {})


class TCPTests(unittest.TestCase):
    def setUp(self):
        self.service = start_service(self, PLUGS)

    @defer.inlineCallbacks
    def test_two_requests_on_one_connection(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        client.request(messages.SENSE_REQUEST)
        first = yield client.wait_for(4)
        client.request(messages.SENSE_REQUEST)
        both = yield client.wait_for(7)           # Fan skips the second request
        self.assertEqual({f["system"]["get_sysinfo"]["alias"] for f in first},
                         {"NAS Server", "Fan", "Heater", "Media"})
        self.assertEqual(len(both), 7)
        self.assertFalse(client.closed.called)

    @defer.inlineCallbacks
    def test_frame_split_across_writes(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        data = cipher.frame(messages.SENSE_REQUEST_ENCRYPTED)
        for i in range(len(data)):
            client.transport.write(data[i:i + 1])
        frames = yield client.wait_for(4)
        self.assertEqual(len(frames), 4)

    @defer.inlineCallbacks
    def test_huge_length_prefix_closes_without_answer(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        client.transport.write(struct.pack(">I", 2 ** 31) + b"\x00" * 100)
        yield client.closed
        self.assertEqual(client.frames, [])
        self.assertEqual(self.flushLoggedErrors(), [])

    @defer.inlineCallbacks
    def test_garbage_frame_then_valid_request(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        client.transport.write(cipher.frame(os.urandom(50)))
        client.transport.write(cipher.frame(cipher.encrypt(b"[]")))
        client.request(messages.SENSE_REQUEST)
        frames = yield client.wait_for(4)
        self.assertEqual(len(frames), 4)
        self.assertTrue(all("emeter" in f for f in frames))

    @defer.inlineCallbacks
    def test_truncated_frame_then_close(self):
        client = yield tcp_connect(self, self.service.tcp_port)
        client.transport.write(cipher.frame(messages.SENSE_REQUEST_ENCRYPTED)[:10])
        client.transport.loseConnection()
        yield client.closed
        self.assertEqual(client.frames, [])
        self.assertEqual(self.flushLoggedErrors(), [])


class ResponderUnitTests(unittest.TestCase):
    def test_never_raises_on_random_input(self):
        responder = Responder(SenseReplyCache(PlugSet()))
        for size in range(0, 300, 7):
            self.assertEqual(responder.handle(os.urandom(size), "127.0.0.1"), [])
        self.assertEqual(responder.handle(cipher.encrypt(json.dumps({"a": [1] * 5}).encode()),
                                          "127.0.0.1"), [])


class TargetNameTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_target_host_name_is_resolved(self):
        # "localhost" comes from the hosts file: no DNS traffic.
        service = start_service(self, "target: localhost\n" + PLUGS)
        client = udp_client(self)
        for _ in range(100):
            if service.udp_protocol.target not in (None, UNRESOLVED):
                break
            yield deferLater(reactor, 0.01)
        self.assertEqual(service.udp_protocol.target, "127.0.0.1")
        sense(client, service.udp_port)
        replies = yield client.wait_for(4)
        self.assertEqual(len(by_alias(replies)), 4)

    @defer.inlineCallbacks
    def test_unresolved_target_sends_nothing(self):
        service = start_service(self, "target: nas.invalid\n" + PLUGS,
                                resolve=lambda name: defer.fail(DNSLookupError("no such host")))
        quiet_client = udp_client(self)
        loud = start_service(self, PLUGS.replace("53:75:31", "53:75:32"))
        sense(quiet_client, service.udp_port)
        yield wait_until(lambda: service.responder.counters.requests.get("sense") == 1)
        # Any reply of the first would be in the client's buffer by now, before the marker's.
        sense(quiet_client, loud.udp_port)
        replies = yield quiet_client.wait_for(4)
        self.assertEqual({addr[1] for _, addr in replies}, {loud.udp_port})
        self.assertEqual(service.responder.counters.requests, {"sense": 1})
        self.flushLoggedErrors()

    @defer.inlineCallbacks
    def test_nothing_is_sent_while_the_target_resolves(self):
        """Neither to the requester nor anywhere else; the target gets the replies once resolved."""
        pending = {}

        def resolve(name):
            pending[name] = defer.Deferred()
            return pending[name]
        service = start_service(self, "target: sense-target.example\n" + PLUGS, resolve=resolve)
        self.assertEqual(list(pending), ["sense-target.example"])
        requester = udp_client(self)
        target = udp_client(self)
        loud = start_service(self, PLUGS.replace("53:75:31", "53:75:32"))
        sense(requester, service.udp_port)
        yield wait_until(lambda: service.responder.counters.requests.get("sense") == 1)
        self.assertEqual(service.responder.counters.replies, {})
        # A marker from another daemon: anything the first had sent would be there before it.
        sense(requester, loud.udp_port)
        replies = yield requester.wait_for(4)
        self.assertEqual({addr[1] for _, addr in replies}, {loud.udp_port})

        pending["sense-target.example"].callback("127.0.0.1")
        self.assertEqual(service.udp_protocol.target, "127.0.0.1")
        # The target receives the replies at the requester's port: ask from the target's port.
        sense(target, service.udp_port)
        replies = yield target.wait_for(3)    # Fan (skip_rate 1) was due at the first request
        self.assertEqual({addr[1] for _, addr in replies}, {service.udp_port})
        self.assertEqual(set(by_alias(replies)), {"NAS Server", "Heater", "Media"})
        self.assertEqual(service.responder.counters.replies, {"sense": 3})
        self.assertEqual(service.responder.counters.ignored, {"target_unresolved": 1})

    def test_a_reload_to_a_name_sends_nothing_until_it_resolves(self):
        pending = []
        service = start_service(self, "target: 127.0.0.1\n" + PLUGS,
                                resolve=lambda name: pending.append(defer.Deferred()) or pending[-1])
        self.assertEqual(service.udp_protocol.target, "127.0.0.1")
        service.set_target("nas.example")
        self.assertIs(service.udp_protocol.target, UNRESOLVED)
        service.set_target("127.0.0.2")        # a newer target wins over a late answer
        pending[0].callback("127.0.0.3")
        self.assertEqual(service.udp_protocol.target, "127.0.0.2")
        service.set_target(None)
        self.assertIsNone(service.udp_protocol.target)
