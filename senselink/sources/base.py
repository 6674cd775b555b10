"""What every connected source service shares.

A source service is an C{IService} child of the daemon's tree. It exposes,
for status pages and metrics: C{kind} (the config name), C{label} (what it
connects to, never a secret), C{connected}, C{last_update} (reactor
seconds of the last value received, or None) and C{last_error} (the last
problem in words, or None while all is well).
"""

from zope.interface import Attribute, Interface, implementer

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure

from senselink.log import Logger

log = Logger()


class ISource(Interface):
    kind = Attribute("The source kind's config name, e.g. 'hass'")
    debug = Attribute("True when DEBUG lines per value are wanted (set by the daemon)")
    label = Attribute("What the source connects to, for people; never a secret")
    connected = Attribute("True while the source's connection is up")
    last_update = Attribute("Reactor seconds of the last value received, or None")
    last_error = Attribute("The last problem in words (never a secret), or None while all is well")


class Complaints:
    """Logs a problem once per key (an entity, a topic) until that key works again."""

    def __init__(self, logger=log):
        self.log = logger
        self.open = set()    # keys with a logged, unresolved problem

    def problem(self, key, format, **kwargs):
        """Log C{format} at WARNING unless C{key} already has an open problem."""
        if key in self.open:
            return False
        self.open.add(key)
        self.log.warn(format, **kwargs)
        return True

    def resolved(self, key, format=None, **kwargs):
        """Mark C{key} good again; log C{format} at INFO when it had a problem."""
        if key in self.open:
            self.open.discard(key)
            if format:
                self.log.info(format, **kwargs)
            return True
        return False


@implementer(ISource)
class SourceService(MultiService):
    """Base class: a MultiService (so a ClientService can be its child) with source status."""

    kind = "source"
    label = ""
    debug = False

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.connected = False
        self.last_update = None
        self.last_error = None
        self.feeds = []        # senselink.power.Feed objects, stopped with the service

    def touch(self):
        """Record that a value arrived now."""
        self.last_update = self.clock.seconds()

    def stopService(self):
        for feed in self.feeds:
            feed.stop()
        return super().stopService()


# Seconds a ready session must live before a reconnect starts the back-off over:
# a server that accepts each session and drops it at once is retried ever more slowly.
SETTLE = 60.0


class Readiness:
    """The ready session of a source run by C{ClientService}, and its retry policy.

    A connection is made, then its session becomes ready (logged in and
    subscribed) or the connection ends first: a refused token or password, a
    server that hangs up, a failed TLS handshake. C{ClientService} counts only
    failed connection attempts and starts again from one whenever a
    connection is made, so on its own such failures would retry every second
    or so. Here each session in a row that ended before it became ready, or
    less than C{settle} seconds after, adds one to the attempt count that
    C{policy} sees; only a session that lived C{settle} seconds starts the
    back-off over.

    Pass L{retry_delay} to C{ClientService} as its C{retryPolicy}; call
    L{ready} when a session becomes ready and L{ended} when its connection
    ends (ready or not).
    """

    def __init__(self, policy, clock=None, settle=SETTLE):
        """
        @param policy: seconds before the next attempt, given the number of
            failed attempts in a row (1 or more).
        @param clock: an C{IReactorTime} to measure how long sessions live
            (without one, every ready session counts as having settled).
        """
        self.policy = policy
        self.clock = clock
        self.settle = settle
        self.current = None    # the session that became ready and has not ended
        self.ready_at = None   # when it became ready
        self.unready = 0       # sessions in a row that ended unready or young
        self._waiters = []

    def retry_delay(self, attempt):
        """C{ClientService}'s C{retryPolicy}: C{policy} of its attempt count plus L{unready}."""
        return self.policy(attempt + self.unready)

    def ready(self, session):
        """C{session} became ready: waiters get C{session}."""
        self.current = session
        self.ready_at = self.clock.seconds() if self.clock is not None else None
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(session)

    def ended(self, session):
        """The connection of C{session} ended; whether it had become ready.

        A ready session that lived C{settle} seconds starts the back-off
        over; one that died younger counts as a failed attempt.
        """
        if session is not None and session is self.current:
            self.current = None
            if self.lived() >= self.settle:
                self.unready = 0
            else:
                self.unready += 1
            return True
        self.unready += 1
        return False

    def lived(self):
        """Seconds the current session has been ready (C{settle} without a clock)."""
        if self.clock is None or self.ready_at is None:
            return self.settle
        return self.clock.seconds() - self.ready_at

    def when_ready(self):
        """A Deferred firing with the current ready session, or the next one."""
        if self.current is not None:
            return defer.succeed(self.current)
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        return waiter

    def cancel_waiters(self, why):
        """Fail the Deferreds of L{when_ready} with C{CancelledError(why)} (the source stops)."""
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.errback(Failure(defer.CancelledError(why)))


@implementer(IStreamClientEndpoint)
class ReportingEndpoint:
    """Wraps a client endpoint so that a failed connection attempt reaches C{on_failure}.

    C{ClientService} retries quietly; sources use this to log why (once per
    streak, through L{Complaints}). Cancelled attempts (stopping) are not failures.
    """

    def __init__(self, endpoint, on_failure, description):
        self.endpoint = endpoint
        self.on_failure = on_failure
        self.description = description

    def connect(self, factory):
        return self.endpoint.connect(factory).addErrback(self._failed)

    def _failed(self, failure):
        if not failure.check(defer.CancelledError):
            self.on_failure(failure)
        return failure

    def __repr__(self):
        return f"<{self.description}>"
