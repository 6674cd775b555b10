"""The mqtt source's connection against a real mosquitto broker: credentials, ACLs,
reconnection, TLS, a frozen broker."""

import shutil
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from senselink.plugbuilder import build_plugs
from senselink.sources.mqtt import MAX_RETRY_DELAY, MqttService
from tests.mosquitto import Broker, make_certificates, started_broker
from tests.sources.mqtt_support import (MARKER, WAIT, BrokerTestCase, CountingPlugs, capture_log,
                                        config_text, load, ours, scheduled_retries)
from tests.support import wait_until


class CredentialTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_password(self):
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, """
            username: senselink
            password: "s3cret-pw"
        """, users={"senselink": "s3cret-pw"})
        yield self.publish_and_wait("home/lamp", "7", "lamp", 7.0)

    @defer.inlineCallbacks
    def test_wrong_password(self):
        events = capture_log(self)
        clock = task.Clock()
        broker = yield started_broker(self, users={"senselink": "right-pw"})
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, """
            username: senselink
            password: "Wr0ng-pw"
        """, broker=broker, clock=clock, ready=False)
        service = self.service

        def refusals():
            return len([line for line in ours(events) if "refuse" in line])

        delays = []
        for attempt in (1, 2, 3):
            yield wait_until(lambda: refusals() == attempt and scheduled_retries(clock),
                             f"refusal {attempt} and a scheduled retry")
            (retry,) = scheduled_retries(clock)
            delays.append(retry.getTime() - clock.seconds())
            clock.advance(delays[-1])
        self.assertFalse(service.connected)
        self.assertLess(delays[0], delays[1])
        self.assertLess(delays[1], delays[2])
        self.assertTrue(all(1.0 <= d <= MAX_RETRY_DELAY for d in delays), delays)
        errors = ours(events, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{broker.port} refused the connection for user "
                      f"'senselink'", errors[0])
        self.assertIn("(CONNACK return code 5)", errors[0])
        self.assertTrue(service.last_error.startswith(
            f"127.0.0.1:{broker.port} refused the connection for user 'senselink'"),
            service.last_error)
        self.assertNotIn("Wr0ng-pw", service.last_error)
        for event in events:
            self.assertNotIn("Wr0ng-pw", formatEvent(event))
            self.assertNotIn("Wr0ng-pw", repr(event))
        # The back-off is capped.
        for attempt in (20, 500):
            self.assertTrue(MAX_RETRY_DELAY - 1 <= service.retry_delay(attempt) <= MAX_RETRY_DELAY)


class ReconnectTests(BrokerTestCase):

    PLUGS = """
        - a:
            power_topic: home/a
        - b:
            power_topic: home/shared
            power_topic_keypath: b
        - c:
            power_topic: home/shared
            power_topic_keypath: c
        - d:
            state_topic: home/d
            max_watts: 10
    """

    @defer.inlineCallbacks
    def reconnect(self, clock):
        """Wait for the loss, let the retry timer run, wait for the new subscriptions."""
        yield wait_until(lambda: not self.service.connected and scheduled_retries(clock),
                         "the lost connection and a scheduled retry")
        ready = self.service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def test_broker_restarted_three_times(self):
        clock = task.Clock()
        service = yield self.start(self.PLUGS, clock=clock)
        topics = ["home/a", "home/shared", "home/d", MARKER]
        self.assertEqual(service.topics, topics)
        for restart in range(3):
            self.broker.kill()
            yield self.broker.start()
            yield self.reconnect(clock)
        self.assertEqual(self.broker.starts, 4)
        for start in range(1, 5):
            self.assertEqual(self.broker.subscriptions(service.client_id, start), topics,
                             f"broker start {start}")
        self.assertEqual(service.subscribed, topics)
        self.assertEqual(service.subscribe_requests, 4)
        for start in range(1, 5):
            # Exactly one SUBSCRIBE packet per connection, with every topic.
            log = self.broker.log(start)
            self.assertEqual(log.count("New client connected from 127.0.0.1"), 1, start)
            self.assertEqual(log.count(f"Received SUBSCRIBE from {service.client_id}"), 1, start)
        counts = CountingPlugs(self)
        before = service.messages
        yield self.broker.publish("home/a", "11")
        yield self.broker.publish("home/shared", '{"b": 22, "c": 33}')
        yield self.broker.publish("home/d", "on")
        yield self.flush()
        self.assertEqual(service.messages - before, 4)   # three messages and the marker
        self.assertEqual([self.watts(p) for p in "abcd"], [11.0, 22.0, 33.0, 10.0])
        self.assertEqual([counts[p] for p in "abcd"], [1, 1, 1, 1])

    @defer.inlineCallbacks
    def test_reconnects_on_its_own(self):
        # The real reactor's clock: the first retry comes 1.5 to 2.5 s after the loss.
        service = yield self.start(self.PLUGS)
        yield self.publish_and_wait("home/a", "1", "a", 1.0)
        self.broker.kill()
        yield wait_until(lambda: not service.connected, "the lost connection")
        self.assertEqual(self.watts("a"), 1.0)
        yield self.broker.start()
        yield service.when_ready().addTimeout(WAIT, reactor)
        yield self.publish_and_wait("home/a", "2", "a", 2.0)
        self.assertEqual(self.broker.subscriptions(service.client_id),
                         ["home/a", "home/shared", "home/d", MARKER])

    @defer.inlineCallbacks
    def test_published_while_disconnected(self):
        events = capture_log(self)
        clock = task.Clock()
        yield self.start(self.PLUGS, clock=clock)
        yield self.publish_and_wait("home/a", "5", "a", 5.0)
        yield self.publish_and_wait("home/shared", '{"b": 6, "c": 7}', "c", 7.0)
        yield self.publish_and_wait("home/d", "on", "d", 10.0)
        self.broker.stop()
        yield wait_until(lambda: not self.service.connected, "the lost connection")
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 10.0])
        yield self.broker.start()
        # The broker is back but the client waits for its retry timer: these
        # are published while it is disconnected.
        yield self.broker.publish("home/a", "999")                      # lost: not retained
        yield self.broker.publish("home/shared", "garbage", retain=True)  # retained, unreadable
        yield self.broker.publish("home/d", "off", retain=True)         # retained, good
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 10.0])
        counts = CountingPlugs(self)
        yield self.reconnect(clock)
        yield self.flush()
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 0.0])
        self.assertEqual([counts[p] for p in "abcd"], [0, 0, 0, 1])
        warnings = ours(events, LogLevel.warn)
        self.assertTrue(any("Lost the connection to MQTT broker" in w for w in warnings), warnings)
        self.assertEqual(len([w for w in warnings if "cannot use b'garbage'" in w]), 2, warnings)


class ConnectionTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_broker_down_at_start(self):
        events = capture_log(self)
        clock = task.Clock()
        broker = Broker()
        self.addCleanup(broker.cleanup)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, broker=broker, clock=clock, ready=False)
        for attempt in range(3):
            yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
        warnings = [w for w in ours(events, LogLevel.warn) if "Cannot connect" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"Cannot connect to MQTT broker 127.0.0.1:{broker.port}", warnings[0])
        self.assertFalse(self.service.connected)
        yield broker.start()
        yield broker.publish("home/lamp", "3", retain=True)
        ready = self.service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)
        yield wait_until(lambda: self.watts("lamp") == 3.0, "the retained lamp power")


class _NonsenseBroker(Protocol):
    """Answers CONNECT with a CONNACK return code MQTT 3.1.1 does not define."""

    def dataReceived(self, data):
        self.factory.connects += 1
        self.transport.write(b"\x20\x02\x00\x86")


class NonsenseTests(TestCase):

    @defer.inlineCallbacks
    def test_unknown_connack_code(self):
        events = capture_log(self)
        factory = Factory.forProtocol(_NonsenseBroker)
        factory.connects = 0
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        config = load(config_text(port.getHost().port, """
            - lamp:
                power_topic: home/lamp
        """))
        clock = task.Clock()
        plugs = build_plugs(config, clock)
        service = MqttService(config.sources[0], plugs, clock, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        for attempt in (1, 2):
            yield wait_until(lambda: factory.connects == attempt and scheduled_retries(clock),
                             f"connection {attempt} and a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        errors = ours(events, LogLevel.error)
        self.assertTrue(errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{port.getHost().port} sent what MQTT 3.1.1 does "
                      f"not allow here: a CONNACK return code 134, which MQTT 3.1.1 does not "
                      f"define; reconnecting", errors[0])
        self.assertFalse(service.connected)
        self.assertEqual(plugs["lamp"].watts, 0.0)


class TLSTests(BrokerTestCase):

    @defer.inlineCallbacks
    def tls_broker(self, require_certificate=False):
        directory = tempfile.mkdtemp(prefix="senselink-tls-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        files = make_certificates(directory)
        broker = yield started_broker(self, tls={
            "ca_file": files["ca_file"], "cert_file": files["server_cert"],
            "key_file": files["server_key"], "require_certificate": require_certificate})
        return broker, files

    @defer.inlineCallbacks
    def test_tls_with_ca_file(self):
        broker, files = yield self.tls_broker()
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            tls:
              ca_file: {files["ca_file"]}
        """, broker=broker)
        yield broker.publish("home/lamp", "21", extra=["--cafile", files["ca_file"]])
        yield wait_until(lambda: self.watts("lamp") == 21.0, "the lamp power over TLS")

    @defer.inlineCallbacks
    def test_tls_client_certificate(self):
        broker, files = yield self.tls_broker(require_certificate=True)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            tls:
              ca_file: {files["ca_file"]}
              cert_file: {files["client_cert"]}
              key_file: {files["client_key"]}
        """, broker=broker)
        yield broker.publish("home/lamp", "22", extra=[
            "--cafile", files["ca_file"], "--cert", files["client_cert"],
            "--key", files["client_key"]])
        yield wait_until(lambda: self.watts("lamp") == 22.0, "the lamp power over TLS")

    @defer.inlineCallbacks
    def test_untrusted_broker(self):
        events = capture_log(self)
        clock = task.Clock()
        broker, files = yield self.tls_broker()
        # Trusting only the system's CAs, the test CA's server is refused.
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, "tls: true", broker=broker, clock=clock, ready=False)
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
        self.assertFalse(self.service.connected)
        warnings = [w for w in ours(events, LogLevel.warn) if "MQTT broker" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"127.0.0.1:{broker.port}", warnings[0])
        self.assertIn("certificate verify failed", warnings[0])


class RefusalTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_acl_refuses_one_topic(self):
        events = capture_log(self)
        yield self.start("""
            - allowed:
                power_topic: home/allowed
            - secret:
                power_topic: home/secret
            - also_secret:
                state_topic: home/secret
                max_watts: 5
        """, """
            username: senselink
            password: pw
        """, users={"publisher": "pub", "senselink": "pw"},
            acl={"publisher": [("publishClientSend", "#", True)],
                 "senselink": [("subscribePattern", "home/allowed", True),
                               ("subscribePattern", MARKER, True),
                               ("subscribePattern", "home/secret", False)]})
        self.assertEqual(self.service.subscribed, ["home/allowed", MARKER])
        yield self.publish_and_wait("home/allowed", "17", "allowed", 17.0)
        yield self.broker.publish("home/secret", "99")
        yield self.flush()
        self.assertEqual((self.watts("secret"), self.watts("also_secret")), (0.0, 0.0))
        errors = ours(events, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{self.broker.port} refused the subscription to "
                      f"home/secret for user 'senselink'", errors[0])
        self.assertIn("plugs on it keep their values: secret, also_secret", errors[0])

    @defer.inlineCallbacks
    def test_non_ascii_password(self):
        password = "p\u00e4ssw\u00f6rd \u2603"
        events = capture_log(self)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            username: "m\u00e9"
            password: "{password}"
        """, users={"m\u00e9": password})
        yield self.publish_and_wait("home/lamp", "7", "lamp", 7.0)
        self.assertFalse(any(password in repr(e) for e in events))


class FrozenBrokerTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_frozen_then_resumed(self):
        events = capture_log(self)
        clock = task.Clock()
        service = yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, "keepalive: 10", clock=clock)
        yield self.publish_and_wait("home/lamp", "1", "lamp", 1.0)
        self.broker.freeze()
        clock.advance(10)                    # PINGREQ, not answered
        clock.advance(4.9)
        self.assertTrue(service.connected)
        clock.advance(0.1)                   # 1.5 keepalives after the last answer
        yield wait_until(lambda: not service.connected, "the frozen broker noticed")
        warnings = ours(events, LogLevel.warn)
        self.assertTrue(any("did not answer a PINGREQ within 5 s; reconnecting" in w
                            for w in warnings), warnings)
        self.assertEqual(self.watts("lamp"), 1.0)
        self.broker.thaw()
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
        ready = service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)
        yield self.publish_and_wait("home/lamp", "2", "lamp", 2.0)
        self.assertEqual(self.broker.connections(service.client_id), 2)
