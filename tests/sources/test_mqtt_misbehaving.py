"""The mqtt source against hand-written misbehaving brokers over real sockets (issue 27):
a QoS 1 flood from a broker that never reads, PINGRESPs nobody asked for, sessions
that die as soon as they are ready."""

import socket

from zope.interface import implementer

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import LogLevel
from twisted.trial.unittest import TestCase

from senselink.plugbuilder import build_plugs
from senselink.sessiondriver import STALL_TIMEOUT
from senselink.sources.mqtt import MAX_RETRY_DELAY, MqttService
from tests.sources.fake_brokers import started_fake_broker
from tests.sources.mqtt_support import capture_log, config_text, load, ours, scheduled_retries
from tests.support import sense, start_service, udp_client, wait_until

PLUG = """
    - lamp:
        power_topic: home/lamp
"""
FLOOD = 20 * 1024 * 1024     # bytes of QoS 1 PUBLISH the broker has to send (about 1.5 M)
SEND_BUFFER = 64 * 1024      # our socket's SO_SNDBUF in the flood test (the kernel doubles it)
# Messages read, at most, before the source stops reading a broker that reads none of
# our PUBACKs: 4 bytes each, what fits in the kernel's buffers (2 x 64 KiB ours, 8 KiB
# the broker's, what is on the way) and Twisted's 64 KiB, plus one read's worth.
MAX_READ = 100_000


@implementer(IStreamClientEndpoint)
class SmallSendBuffer:
    """TCP to 127.0.0.1:C{port}, our socket's send buffer pinned at L{SEND_BUFFER} (no
    autotuning to megabytes: the bound is about what we queue, not about the kernel)."""

    def __init__(self, port):
        self.endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)

    def connect(self, factory):
        def pinned(protocol):
            protocol.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF,
                                                 SEND_BUFFER)
            return protocol
        return self.endpoint.connect(factory).addCallback(pinned)


@defer.inlineCallbacks
def settled(value, what, quiet=0.5, timeout=60.0):
    """Wait until C{value()} has not changed for C{quiet} seconds (at most C{timeout})."""
    from twisted.internet.task import deferLater
    last, since = value(), reactor.seconds()
    deadline = since + timeout
    while reactor.seconds() - since < quiet:
        if reactor.seconds() > deadline:
            raise AssertionError(f"{what} still changing after {timeout} s")
        yield deferLater(reactor, 0.05, lambda: None)
        now = value()
        if now != last:
            last, since = now, reactor.seconds()
    return last


class MisbehavingBrokerTests(TestCase):
    timeout = 120

    def source(self, broker, settings="", endpoint=None, plugs=PLUG):
        self.clock = task.Clock()
        config = load(config_text(broker.port, plugs, settings))
        self.plugs = build_plugs(config, self.clock)
        service = MqttService(config.sources[0], self.plugs, self.clock, reactor=reactor,
                              endpoint=endpoint)
        service.startService()
        self.addCleanup(service.stopService)
        return service

    @defer.inlineCallbacks
    def test_qos1_flood_from_a_broker_that_never_reads(self):
        """We stop reading once our PUBACKs wait, and drop the broker after the stall timeout.

        Bound: fewer than MAX_READ messages read (so at most 4 x MAX_READ bytes of
        PUBACK queued) out of the 20 MiB flooded; before, the source read all of it
        and queued every PUBACK.
        """
        events = capture_log(self)
        broker = yield started_fake_broker(self, "flood", limit=FLOOD)
        service = self.source(broker, "qos: 1", SmallSendBuffer(broker.port))
        yield wait_until(lambda: service.connected, "the flooding broker's SUBACK")
        written, read = yield settled(lambda: (broker.written, service.messages),
                                      "the flood and what the source read")
        self.assertLess(read, MAX_READ, f"{read} messages read of {written} bytes flooded")
        self.assertGreater(read, 0)
        self.assertLess(written, FLOOD)      # the broker is blocked too: nothing is read
        self.assertTrue(service.connected)
        self.assertEqual(self.plugs["lamp"].watts, 1.0)
        self.clock.advance(STALL_TIMEOUT)
        yield wait_until(lambda: broker.lost == 1 and not service.connected, "the broker dropped")
        lines = ours(events, LogLevel.warn) + ours(events, LogLevel.error)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(f"MQTT broker 127.0.0.1:{broker.port} did not read what the source sent "
                      f"for 30 s (we stopped reading it meanwhile); dropped; reconnecting",
                      lines[0])

    @defer.inlineCallbacks
    def test_pingresps_nobody_asked_for_are_no_sign_of_life(self):
        """A broker that sends a PINGRESP every second and answers no PINGREQ is dropped."""
        events = capture_log(self)
        broker = yield started_fake_broker(self, "pingresp")
        service = self.source(broker, "keepalive: 10")
        yield wait_until(lambda: service.connected, "the broker's SUBACK")
        self.clock.advance(10)               # our PINGREQ, which it never answers
        yield wait_until(lambda: not service.connected, "the broker dropped", timeout=5)
        self.assertEqual(broker.lost, 1)
        (line,) = ours(events, LogLevel.warn) + ours(events, LogLevel.error)
        self.assertIn(f"MQTT broker 127.0.0.1:{broker.port} sent what MQTT 3.1.1 does not "
                      f"allow here: a PINGRESP, which answers no PINGREQ; reconnecting", line)

    @defer.inlineCallbacks
    def test_sessions_that_die_once_ready_make_the_back_off_grow(self):
        """Accepted and subscribed, then dropped at once: each retry waits longer."""
        broker = yield started_fake_broker(self, "drop")
        service = self.source(broker)
        attempts = []
        policy = service.readiness.policy

        def recording(attempt):
            attempts.append(attempt)
            return policy(attempt)
        service.readiness.policy = recording
        for n in range(1, 6):
            yield wait_until(lambda: broker.lost == n and scheduled_retries(self.clock),
                             f"connection {n} dropped and a retry scheduled")
            self.clock.advance(MAX_RETRY_DELAY)
        # ClientService counts 1 each time (a connection was made); Readiness adds the
        # sessions in a row that died young.
        first = attempts[0]
        self.assertEqual(attempts[:5], list(range(first, first + 5)))
        yield wait_until(lambda: broker.connections == 6, "the sixth connection")

    @defer.inlineCallbacks
    def test_unusable_payloads_on_many_topics_are_summarised(self):
        """A wildcard lets a broker send on any number of topics: at most 100 lines and one
        more that says the rest are counted, not a line per message."""
        events = capture_log(self)
        broker = yield started_fake_broker(self, "topics", limit=5000)
        service = self.source(broker, "", plugs=PLUG + """
    - fan:
        state_topic: home/+/state
        max_watts: 10
""")
        yield wait_until(lambda: self.plugs["lamp"].watts == 1.0, "the last message")
        self.assertEqual(service.messages, 5001)
        lines = ours(events, LogLevel.warn)
        self.assertEqual(len(lines), 101, lines[-3:])
        self.assertIn("the others are counted, not logged one by one", lines[-1])
        self.assertEqual(service.router.unlogged, 4900)


class SenseDuringAFloodTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_sense_is_answered_while_a_broker_floods(self):
        """The daemon answers Kasa UDP while its mqtt source is flooded, and once it stopped
        reading the broker."""
        broker = yield started_fake_broker(self, "flood", limit=FLOOD)
        daemon = start_service(self, config_text(broker.port, PLUG, "qos: 1"))
        client = udp_client(self)
        yield wait_until(lambda: broker.written > 1024 * 1024, "the flood under way")
        sense(client, daemon.udp_port)
        (reply, _), = yield client.wait_for(1)
        self.assertEqual(reply["emeter"]["get_realtime"]["power"], 1.0)
        yield settled(lambda: broker.written, "the flood")
        self.assertLess(broker.written, FLOOD)       # the daemon stopped reading it
        sense(client, daemon.udp_port)
        replies = yield client.wait_for(2)
        self.assertEqual(replies[1][0]["emeter"]["get_realtime"]["power"], 1.0)
