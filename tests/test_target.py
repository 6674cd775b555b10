"""Where Sense replies go (senselink/target.py): a target name that does not resolve is
tried again, a resolved one is refreshed, and a failed refresh keeps the last address."""

from twisted.internet import defer, task
from twisted.internet.error import DNSLookupError
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from senselink.target import REFRESH_INTERVAL, RETRY_DELAYS, Target
from senselink.udp import UNRESOLVED


class Wire:
    """Stands in for the UDP protocol: only where its replies go."""
    target = None

    def aim(self, target):
        self.target = target


class Resolver:
    """Answers each resolution with the next of C{answers} (an address, or an exception)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def __call__(self, name):
        self.asked.append(name)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            return defer.fail(answer)
        return defer.succeed(answer)


class TargetTests(unittest.TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.wire = Wire()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def target(self, *answers):
        self.resolver = Resolver(*answers)
        target = Target(self.wire.aim, self.resolver, self.clock)
        self.addCleanup(target.stop)
        return target

    def lines(self, words):
        return [line for line in map(formatEvent, self.events) if words in line]

    def test_a_name_that_does_not_resolve_is_tried_again(self):
        no = DNSLookupError("no such host")
        target = self.target(no, no, "192.0.2.7")
        target.set("sense-target.lan")
        self.assertIs(self.wire.target, UNRESOLVED)
        self.clock.advance(RETRY_DELAYS[0])
        self.assertEqual(len(self.resolver.asked), 2)
        self.assertIs(self.wire.target, UNRESOLVED)       # still nothing sent anywhere
        self.clock.advance(RETRY_DELAYS[1])
        self.assertEqual(self.wire.target, "192.0.2.7")
        self.assertEqual(self.resolver.asked, ["sense-target.lan"] * 3)
        self.assertEqual(len(self.lines("Cannot resolve target sense-target.lan")), 1)
        self.assertEqual(len(self.lines("Replies go to target sense-target.lan (192.0.2.7)")), 1)
        self.flushLoggedErrors()

    def test_the_delay_grows_to_its_last_step(self):
        target = self.target(*[DNSLookupError("no")] * (len(RETRY_DELAYS) + 2))
        target.set("sense-target.lan")
        for delay in RETRY_DELAYS + (RETRY_DELAYS[-1],):
            asked = len(self.resolver.asked)
            self.clock.advance(delay - 0.5)
            self.assertEqual(len(self.resolver.asked), asked)
            self.clock.advance(0.5)
            self.assertEqual(len(self.resolver.asked), asked + 1)
        self.flushLoggedErrors()

    def test_a_resolved_name_is_refreshed_and_a_failed_refresh_keeps_the_address(self):
        target = self.target("192.0.2.7", DNSLookupError("timeout"), "192.0.2.8")
        target.set("sense-target.lan")
        self.assertEqual(self.wire.target, "192.0.2.7")
        self.clock.advance(REFRESH_INTERVAL)
        self.assertEqual(self.wire.target, "192.0.2.7")    # the last good address stays
        self.assertEqual(len(self.lines("Cannot resolve target sense-target.lan again")), 1)
        self.clock.advance(RETRY_DELAYS[0])
        self.assertEqual(self.wire.target, "192.0.2.8")    # DHCP moved the host
        self.assertEqual(len(self.lines("Replies go to target sense-target.lan (192.0.2.8)")), 1)

    def test_a_new_target_or_stop_ends_the_tries(self):
        target = self.target(DNSLookupError("no"), "192.0.2.9")
        target.set("old-target.lan")
        target.set("192.0.2.9")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.wire.target, "192.0.2.9")
        target.set("new-target.lan")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)      # the refresh
        target.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.flushLoggedErrors()
