"""The MQTT client sessions without I/O: bytes and plain numbers for the time in, outputs
out. No reactor, no clock, no transport: what a broker sends is written with the codec's
encoders, what the session sends is read with its CLIENT decoder."""

from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from senselink.mqtt import encode
from senselink.mqtt.decode import CLIENT, Decoder
from senselink.mqtt.packets import (ConnackCode, Connect, Disconnect, PingReq, Puback, Publish,
                                    Subscribe)
from senselink.mqttsession import (DISCONNECT, HANDSHAKE_TIMEOUT, PING, SUBSCRIBE, Accepted,
                                   NoAnswer, ProtocolError, Refused)
from senselink.publish.outbox import Outbox
from senselink.publish.session import FLUSH, MAX_INFLIGHT, PublisherSession
from senselink.sessionoutputs import Abort, Close, Send
from senselink.sources.mqtt.session import Oversized, Subscribed, SubscriberSession


def settings(keepalive=10, qos=0):
    return SimpleNamespace(keepalive=keepalive, username="me", password=b"pw", qos=qos)


class Run:
    """A session and what came out of it, split into packets sent, events and ends."""

    def __init__(self, session):
        self.session = session
        self.decoder = Decoder(CLIENT)
        self.sent, self.events, self.ends = [], [], []

    def take(self, outputs):
        for output in outputs:
            if output.__class__ is Send:
                self.sent.extend(self.decoder.feed(output.data))
            elif output.__class__ in (Close, Abort):
                self.ends.append(output)
            else:
                self.events.append(output)
        return self

    def start(self, now=0.0):
        return self.take(self.session.start(now))

    def receive(self, data, now):
        return self.take(self.session.receive(data, now))

    def timeout(self, now):
        return self.take(self.session.timeout(now))

    def flush(self):
        out = (self.sent, self.events, self.ends)
        self.sent, self.events, self.ends = [], [], []
        return out


class SubscriberTests(SynchronousTestCase):

    def subscriber(self, topics=("a/b", "c/+"), qos=0, keepalive=10, max_payload=1024):
        self.messages = []
        session = SubscriberSession(settings(keepalive, qos), "me-1", topics,
                                    lambda *fields: self.messages.append(fields), max_payload)
        return Run(session)

    def test_connect_connack_subscribe_suback(self):
        run = self.subscriber().start(100.0)
        self.assertEqual(run.flush(), ([Connect("me-1", 10, "me", b"pw", True)], [], []))
        self.assertEqual(run.session.next_deadline(), 100.0 + HANDSHAKE_TIMEOUT)
        run.receive(encode.connack(), 101.0)
        sent, events, ends = run.flush()
        self.assertEqual(sent, [Subscribe(1, (("a/b", 0), ("c/+", 0)))])
        self.assertEqual(events, [Accepted()])
        self.assertEqual(run.session.awaiting, SUBSCRIBE)
        self.assertEqual(run.session.deadline, 101.0 + HANDSHAKE_TIMEOUT)
        self.assertEqual(run.session.next_deadline(), 110.0)     # the PINGREQ comes first
        run.receive(encode.suback(1, [0, 0x80]), 102.0)
        self.assertEqual(run.flush(), ([], [Subscribed(("a/b",), ("c/+",))], []))
        self.assertEqual(run.session.next_deadline(), 110.0)     # the first PINGREQ

    def test_messages_go_straight_to_on_message_with_one_send_of_pubacks(self):
        run = self.subscriber(qos=1).start()
        run.receive(encode.connack() + encode.suback(1, [1, 1]), 1.0)
        run.flush()
        stream = b"".join(encode.publish("a/b", b"%d" % i, qos=1, packet_id=i + 1)
                          for i in range(5)) + encode.publish("c/d", b"x")
        outputs = run.session.receive(stream, 2.0)
        self.assertEqual(len(outputs), 1)                   # one Send, every PUBACK in it
        run.take(outputs)
        self.assertEqual(run.sent, [Puback(i + 1) for i in range(5)])
        self.assertEqual([m[:2] for m in self.messages],
                         [("a/b", b"%d" % i) for i in range(5)] + [("c/d", b"x")])

    def test_messages_in_the_connack_read(self):
        run = self.subscriber(topics=()).start()
        run.flush()
        run.receive(encode.connack() + encode.publish("a/b", b"1"), 1.0)
        self.assertEqual(run.flush(), ([], [Accepted(), Subscribed((), ())], []))
        self.assertEqual(self.messages, [("a/b", b"1", 0, False, None, False)])

    def test_oversized_is_an_event(self):
        run = self.subscriber(max_payload=10).start()
        run.receive(encode.connack() + encode.suback(1, [0, 0]), 1.0)
        run.flush()
        run.receive(encode.publish("a/b", b"9" * 50), 2.0)
        self.assertEqual(run.flush(), ([], [Oversized("a/b", b"9" * 50, 50)], []))

    def test_no_connack(self):
        run = self.subscriber().start(0.0)
        run.flush()
        self.assertEqual(run.timeout(9.0).flush(), ([], [], []))
        run.timeout(10.0)
        self.assertEqual(run.flush(), ([], [NoAnswer("the CONNECT", 10.0)], [Abort("NoAnswer")]))
        self.assertIsNone(run.session.next_deadline())

    def test_refused(self):
        run = self.subscriber().start()
        run.receive(encode.connack(ConnackCode.NOT_AUTHORIZED), 1.0)
        sent, events, ends = run.flush()
        self.assertEqual(events, [Refused(ConnackCode.NOT_AUTHORIZED)])
        self.assertEqual(len(ends), 1)

    def test_malformed_and_unasked_packets_are_one_protocol_error(self):
        for data, reason in (
                (encode.connack(), "a second CONNACK"),
                (encode.puback(3), "a PUBACK for packet 3, which was not sent"),
                (encode.suback(1, [0, 0]), "a SUBACK for packet 1, which was not sent"),
                (b"\xf0\x00", None)):
            run = self.subscriber().start()
            run.receive(encode.connack() + encode.suback(1, [0, 0]), 1.0)
            run.flush()
            run.receive(data + encode.publish("a/b", b"late"), 2.0)
            sent, events, ends = run.flush()
            self.assertEqual(len(events), 1, data)
            self.assertIsInstance(events[0], ProtocolError)
            if reason is not None:
                self.assertEqual(events[0].reason, reason)
            self.assertEqual(len(ends), 1)
            self.assertEqual(self.messages, [])
            self.assertEqual(run.receive(encode.publish("a/b", b"1"), 3.0).flush(), ([], [], []))

    def test_keepalive(self):
        run = self.subscriber().start(0.0)
        run.receive(encode.connack() + encode.suback(1, [0, 0]), 1.0)
        run.flush()
        self.assertEqual(run.session.next_deadline(), 10.0)
        self.assertEqual(run.timeout(10.0).flush(), ([PingReq()], [], []))
        self.assertEqual(run.session.awaiting, PING)
        self.assertEqual(run.session.next_deadline(), 15.0)
        run.receive(encode.pingresp(), 12.0)
        self.assertEqual(run.session.next_deadline(), 20.0)
        run.timeout(20.0)
        self.assertEqual(run.timeout(25.0).flush(), ([PingReq()], [NoAnswer("a PINGREQ", 5.0)],
                                                     [Abort("NoAnswer")]))

    def test_a_pingresp_that_answers_no_pingreq_is_no_answer(self):
        """A broker sending PINGRESPs of its own accord is not alive for it (issue 27)."""
        run = self.subscriber().start(0.0)
        run.receive(encode.connack() + encode.suback(1, [0, 0]), 1.0)
        run.flush()
        run.receive(encode.pingresp(), 2.0)
        sent, events, ends = run.flush()
        self.assertEqual(events, [ProtocolError("a PINGRESP, which answers no PINGREQ")])
        self.assertEqual(len(ends), 1)

    def test_disconnect(self):
        run = self.subscriber().start()
        run.receive(encode.connack(), 1.0)
        run.flush()
        run.receive(DISCONNECT, 2.0)
        self.assertEqual(run.flush(), ([Disconnect()], [], [Close()]))
        self.assertIsNone(run.session.next_deadline())

    def test_disconnect_before_the_connack_sends_no_disconnect(self):
        run = self.subscriber().start()
        run.flush()
        self.assertEqual(run.receive(DISCONNECT, 1.0).flush(), ([], [], [Close()]))


class PublisherTests(SynchronousTestCase):

    def publisher(self):
        self.outbox = Outbox(1000)
        return Run(PublisherSession(settings(), "pub", "sl/status", b"offline", self.outbox))

    def test_inflight_bounded_and_put_back_on_loss(self):
        run = self.publisher().start()
        (connect,) = run.flush()[0]
        self.assertEqual((connect.will.topic, connect.will.qos, connect.will.retain),
                         ("sl/status", 1, True))
        for i in range(MAX_INFLIGHT + 10):
            self.outbox.put(f"t/{i}", b"%d" % i, qos=1)
        self.assertEqual(run.receive(FLUSH, 0.5).flush(), ([], [], []))   # not accepted yet
        run.receive(encode.connack(), 1.0)
        self.assertEqual(run.flush()[1], [Accepted()])
        run.receive(FLUSH, 1.0)
        sent = run.flush()[0]
        self.assertEqual(len(sent), MAX_INFLIGHT)
        self.assertTrue(all(isinstance(p, Publish) and p.qos == 1 for p in sent))
        self.assertEqual(len(self.outbox), 10)
        run.receive(encode.puback(sent[0].packet_id), 2.0)
        self.assertEqual([p.topic for p in run.flush()[0]], [f"t/{MAX_INFLIGHT}"])
        run.session.lost(3.0)
        self.assertEqual(len(self.outbox), 10 - 1 + MAX_INFLIGHT)

    def test_a_puback_not_awaited(self):
        run = self.publisher().start()
        run.receive(encode.connack() + encode.puback(9), 1.0)
        self.assertEqual(run.flush()[1], [Accepted(), ProtocolError(
            "a PUBACK for packet 9, which is not awaiting one")])
