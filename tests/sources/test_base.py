"""Readiness: sessions that never became ready back off like failed connection attempts.

A real C{ClientService} on a C{task.Clock}, with an endpoint that fails or
connects as each test scripts it; no network.
"""

from twisted.application.internet import ClientService
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial import unittest

from senselink.sources.base import Readiness


class Session(Protocol):
    """A connection whose session the test makes ready (or not) by hand."""

    def connectionMade(self):
        self.factory.sessions.append(self)

    def connectionLost(self, reason):
        self.factory.readiness.ended(self)


class ScriptedEndpoint:
    """Each connect() fails or connects, as the next item of C{script} says."""

    def __init__(self, script):
        self.script = list(script)
        self.transports = []

    def connect(self, factory):
        if self.script.pop(0) == "fail":
            return defer.fail(ConnectionRefusedError("scripted"))
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1883))
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        self.transports.append(transport)
        return defer.succeed(protocol)


class ReadinessTests(unittest.TestCase):

    def start(self, script):
        self.clock = Clock()
        self.attempts = []     # what the policy was asked

        def policy(attempts):
            self.attempts.append(attempts)
            return float(attempts)
        self.readiness = Readiness(policy)
        factory = Factory.forProtocol(Session)
        factory.sessions = []
        factory.readiness = self.readiness
        self.sessions = factory.sessions
        self.endpoint = ScriptedEndpoint(script)
        self.service = ClientService(self.endpoint, factory,
                                     retryPolicy=self.readiness.retry_delay, clock=self.clock)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    def lose(self):
        """The latest session's connection ends; returns the retry delay then scheduled."""
        self.endpoint.transports[-1].loseConnection()
        return self.retry()

    def retry(self):
        (call,) = self.clock.getDelayedCalls()
        delay = call.getTime() - self.clock.seconds()
        self.clock.advance(delay)
        return delay

    def test_unready_sessions_count_as_failed_attempts(self):
        self.start(["connect", "connect", "connect", "fail", "fail", "connect", "connect"])
        # Two sessions end before they are ready: ClientService alone would say 1, 1.
        self.assertEqual(self.lose(), 2.0)
        self.assertEqual(self.lose(), 3.0)
        self.assertEqual(self.readiness.unready, 2)
        # The third one too; then two connection attempts fail.
        self.assertEqual(self.lose(), 4.0)
        self.assertEqual(self.retry(), 5.0)
        self.assertEqual(self.retry(), 6.0)
        self.assertEqual(len(self.sessions), 4)
        # A session that becomes ready (no clock: it counts as settled) starts it over.
        self.readiness.ready(self.sessions[-1])
        self.assertEqual(self.readiness.unready, 3)
        self.assertEqual(self.lose(), 1.0)
        self.assertEqual(self.readiness.unready, 0)
        self.assertEqual(self.attempts, [2, 3, 4, 5, 6, 1])

    def test_ended(self):
        readiness = Readiness(float)
        first, second = object(), object()
        self.assertFalse(readiness.ended(first))
        readiness.ready(second)
        self.assertFalse(readiness.ended(first))     # not the ready one
        self.assertEqual((readiness.current, readiness.unready), (second, 2))
        self.assertTrue(readiness.ended(second))
        self.assertEqual((readiness.current, readiness.unready), (None, 0))
        self.assertFalse(readiness.ended(None))
        self.assertEqual(readiness.retry_delay(3), 4.0)

    def test_sessions_that_die_young_keep_backing_off(self):
        clock = Clock()
        readiness = Readiness(float, clock, settle=60.0)
        delays = []
        for _ in range(5):
            session = object()
            readiness.ready(session)
            clock.advance(1.0)          # ready, then dropped a second later
            self.assertTrue(readiness.ended(session))
            delays.append(readiness.retry_delay(1))
        self.assertEqual(delays, [2.0, 3.0, 4.0, 5.0, 6.0])
        # One that lives a minute starts the back-off over.
        session = object()
        readiness.ready(session)
        clock.advance(60.0)
        self.assertEqual(readiness.lived(), 60.0)
        self.assertTrue(readiness.ended(session))
        self.assertEqual(readiness.retry_delay(1), 1.0)

    def test_when_ready(self):
        readiness = Readiness(float)
        early = readiness.when_ready()
        self.assertNoResult(early)
        session = object()
        readiness.ready(session)
        self.assertIs(self.successResultOf(early), session)
        self.assertIs(self.successResultOf(readiness.when_ready()), session)
        readiness.ended(session)
        late = readiness.when_ready()
        self.assertNoResult(late)
        readiness.cancel_waiters("stopping")
        failure = self.failureResultOf(late, defer.CancelledError)
        self.assertEqual(str(failure.value), "stopping")
