"""What every connected source service shares.

A source service is an C{IService} child of the daemon's tree. It exposes,
for status pages and metrics: C{kind} (the config name), C{label} (what it
connects to, never a secret), C{connected} and C{last_update} (reactor
seconds of the last value received, or None).
"""

from zope.interface import Attribute, Interface, implementer

from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint

from senselink.log import Logger

log = Logger()


class ISource(Interface):
    kind = Attribute("The source kind's config name, e.g. 'hass'")
    debug = Attribute("True when DEBUG lines per value are wanted (set by the daemon)")
    label = Attribute("What the source connects to, for people; never a secret")
    connected = Attribute("True while the source's connection is up")
    last_update = Attribute("Reactor seconds of the last value received, or None")


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

    def __contains__(self, key):
        return key in self.open



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
        self.feeds = []        # senselink.power.Feed objects, stopped with the service

    def touch(self):
        """Record that a value arrived now."""
        self.last_update = self.clock.seconds()

    def stopService(self):
        for feed in self.feeds:
            feed.stop()
        return super().stopService()


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
