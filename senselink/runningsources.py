"""The running source services: L{RunningSources}, the C{sources} child of the daemon.

Each configured source that connects to something (hass, mqtt, http) runs
as one child service, kept with its config (C{(SourceConfig, service)} pairs
in config order). A reload keeps some, stops the others and starts new ones
(L{RunningSources.replace}).
"""

from twisted.application.service import MultiService
from twisted.internet import defer

from senselink.excerpt import clip, shown_name
from senselink.log import Logger

log = Logger()

# Seconds to wait for replaced sources to stop before starting their successors.
STOP_TIMEOUT = 30


def describe_source(source) -> str:
    """C{hass source #2 (plug_a, plug_b)}: a source config, for log lines (ids clipped)."""
    ids = clip(", ".join(shown_name(plug.id) for plug in source.plugs)) or "no plugs"
    return f"{source.kind} source #{source.index + 1} ({ids})"


class RunningSources(MultiService):
    """The source services in config order, each with its C{SourceConfig}."""

    name = "sources"

    def __init__(self, clock, debug=False):
        super().__init__()
        self.clock = clock
        self.debug = debug         # set on each source service: DEBUG lines per value
        self.pairs = []            # (SourceConfig, service) in config order

    def start(self, config, kinds, plugs, reactor):
        """Make and add the services of C{config}'s sources (at start)."""
        for source in config.sources:
            service = kinds[source.kind].make_service(source, plugs, reactor)
            if service is not None:
                service.debug = self.debug
                service.setServiceParent(self)
                self.pairs.append((source, service))

    @property
    def in_order(self):
        """The running source services, in config order."""
        return [service for _, service in self.pairs]

    def replace(self, keep, start):
        """Keep the C{(SourceConfig, service)} pairs in C{keep}, stop every other source,
        then start C{start} (pairs of new services). Fires with the pairs stopped.

        Replaced sources stop first (two connections with one client id would
        push each other out); their successors start once they have stopped,
        or after L{STOP_TIMEOUT} seconds.
        """
        kept = {id(service) for _, service in keep}
        stopping = [pair for pair in self.pairs if id(pair[1]) not in kept]
        self.pairs = list(keep)
        stops = [defer.maybeDeferred(service.disownServiceParent) for _, service in stopping]
        waiting = defer.DeferredList(stops, consumeErrors=True)
        if stops:
            waiting.addTimeout(STOP_TIMEOUT, self.clock)

        def stopped(results):
            for ok, value in results:
                if not ok:
                    log.failure("A replaced source failed to stop", value)

        def late(failure):
            failure.trap(defer.TimeoutError)
            log.warn("Replaced sources did not stop within {timeout} s; starting the new "
                     "ones anyway", timeout=STOP_TIMEOUT)

        def start_new(_):
            for source, service in start:
                service.debug = self.debug
                try:
                    service.setServiceParent(self)
                except Exception:
                    log.failure("Cannot start the {source}", source=describe_source(source))
                    continue
                self.pairs.append((source, service))
            return stopping

        return waiting.addCallbacks(stopped, late).addCallback(start_new)
