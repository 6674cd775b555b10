"""Prometheus metrics of the web interface: C{GET /metrics}.

L{SenseLinkCollector} reads live values at each scrape from C{web}, the
L{senselink.web.interface.WebInterface}: its C{plugs}, C{sources},
C{counters} (the responder's), C{now()} and the daemon's C{meter} (energy)
and C{polling} (who polls).
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from senselink.web.api import JsonResource


# Reasons the responder counts for requests it does not answer: always exported, 0 until seen.
IGNORED_REASONS = frozenset({"echo", "malformed", "oversized", "unsupported", "not_allowed", "rate_limited",
                   "reply_cap", "connection_limit", "send_buffer_full", "target_unresolved"})


class Metrics(JsonResource):
    """C{/metrics}: the Prometheus text format, from a registry of its own."""

    isLeaf = True

    def __init__(self, web):
        super().__init__()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SenseLinkCollector(web))

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return generate_latest(self.registry)


class SenseLinkCollector:
    """Reads live values from the running service at each scrape."""

    def __init__(self, web):
        self.web = web

    def describe(self):
        return []

    def collect(self):
        web = self.web
        now = web.now()
        watts = GaugeMetricFamily("senselink_plug_watts", "Power each plug reports, in watts",
                                  labels=["plug", "alias", "kind"])
        on = GaugeMetricFamily("senselink_plug_on", "Whether each plug reports on (1) or off (0)",
                               labels=["plug", "alias", "kind"])
        reported = GaugeMetricFamily("senselink_plug_reported",
                                     "Whether Sense sees the plug itself (1) or not (0)",
                                     labels=["plug", "alias", "kind"])
        for plug in web.plugs:
            labels = [plug.id, plug.alias, plug.kind]
            watts.add_metric(labels, plug.watts)
            on.add_metric(labels, 1.0 if plug.on else 0.0)
            reported.add_metric(labels, 1.0 if plug.reported else 0.0)
        yield watts
        yield on
        yield reported
        energy = CounterMetricFamily("senselink_energy_kwh",
                                     "Energy each plug has reported since its counters began, "
                                     "in kWh", labels=["plug"])
        meter = web.daemon.meter
        for plug in web.plugs:
            counter = meter.get(plug.id)
            if counter is not None:
                energy.add_metric([plug.id], counter.figures(now)[2])
        yield energy
        yield from self.delivery()
        yield from self.polling(now)
        counters = web.counters
        requests = CounterMetricFamily("senselink_requests", "Kasa requests received, by kind",
                                       labels=["kind"])
        for kind in sorted({"sense"} | set(counters.requests)):
            requests.add_metric([kind], counters.requests.get(kind, 0))
        yield requests
        replies = CounterMetricFamily("senselink_replies", "Kasa replies sent, by request kind",
                                      labels=["kind"])
        for kind in sorted({"sense"} | set(counters.replies)):
            replies.add_metric([kind], counters.replies.get(kind, 0))
        yield replies
        ignored = CounterMetricFamily("senselink_requests_ignored",
                                      "Kasa requests not answered, by reason", labels=["reason"])
        for reason in sorted(IGNORED_REASONS | set(counters.ignored)):
            ignored.add_metric([reason], counters.ignored.get(reason, 0))
        yield ignored
        connected = GaugeMetricFamily("senselink_source_connected",
                                      "Whether each source's connection is up (1) or not (0)",
                                      labels=["source", "kind", "label"])
        age = GaugeMetricFamily("senselink_source_last_update_age_seconds",
                                "Seconds since each source last delivered a value",
                                labels=["source", "kind", "label"])
        for index, source in enumerate(web.sources):
            labels = [str(index), source.kind, source.label or ""]
            connected.add_metric(labels, 1.0 if source.connected else 0.0)
            if source.last_update is not None:
                age.add_metric(labels, max(0.0, now - source.last_update))
        error = GaugeMetricFamily("senselink_source_error",
                                  "Whether each source's last attempt failed (1) or not (0)",
                                  labels=["source", "kind", "label"])
        for index, source in enumerate(web.sources):
            labels = [str(index), source.kind, source.label or ""]
            error.add_metric(labels, 0.0 if getattr(source, "last_error", None) is None else 1.0)
        yield connected
        yield age
        yield error

    def delivery(self):
        """Per plug, as Sense sees it: last answered, polls carried of the last ones, polls
        missed in a row (Sense shows N/A after about 5)."""
        delivery = self.web.daemon.delivery
        last = GaugeMetricFamily("senselink_plug_sense_last_answered_timestamp_seconds",
                                 "When Sense was last answered with each plug (Unix time)",
                                 labels=["plug"])
        carried = GaugeMetricFamily("senselink_plug_sense_polls_carried",
                                    "Of the last Sense polls (at most 60), how many carried "
                                    "each plug", labels=["plug"])
        window = GaugeMetricFamily("senselink_plug_sense_polls",
                                   "The Sense polls senselink_plug_sense_polls_carried counts "
                                   "from (60 once Sense has polled that often)", labels=["plug"])
        missed = GaugeMetricFamily("senselink_plug_sense_polls_missed",
                                   "Sense polls in a row without each plug (N/A after about 5)",
                                   labels=["plug"])
        polls = delivery.polls
        for plug in self.web.plugs:
            record = delivery.get(plug.id)
            if record is None:
                continue
            if record.last is not None:
                last.add_metric([plug.id], record.last)
            carried.add_metric([plug.id], record.carried(polls))
            window.add_metric([plug.id], record.window(polls))
            missed.add_metric([plug.id], record.missed(polls))
        yield last
        yield carried
        yield window
        yield missed

    def polling(self, now):
        """Who polls: last request time, polls per minute and addresses, Sense and Kasa apart."""
        polling = self.web.daemon.polling
        last = GaugeMetricFamily("senselink_last_request_timestamp_seconds",
                                 "When the last request of each kind of client arrived "
                                 "(Unix time)", labels=["client"])
        rate = GaugeMetricFamily("senselink_polls_per_minute",
                                 "Requests per minute over about the last minute",
                                 labels=["client"])
        seen = GaugeMetricFamily("senselink_client_last_seen_timestamp_seconds",
                                 "When each recent requester address last asked (Unix time)",
                                 labels=["client", "address"])
        for client, requesters in (("sense", polling.sense), ("kasa", polling.kasa)):
            if requesters.last is not None:
                last.add_metric([client], requesters.last)
            rate.add_metric([client], requesters.per_minute(now))
            for address, when in requesters.peers():
                seen.add_metric([client, address], when)
        yield last
        yield rate
        yield seen
