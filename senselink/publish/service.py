"""The publisher: each chosen plug's watts and kWh to one MQTT broker (L{Publisher}).

A child service of the daemon while a C{publish} section is configured.
C{ClientService} connects, and connects again with the mqtt source's
back-off (L{senselink.mqttclient}); each connection is one
L{PublisherSession} (no I/O) run by L{senselink.mqttclient.SessionProtocol},
whose events come to L{Publisher.hear}. Once a session is accepted everything is queued again:
C{online}, the discovery configs, every plug's watts and kWh. Between
sessions the outbox keeps the latest message per topic, nothing more.
"""

import dataclasses
import hashlib
import socket
from types import MappingProxyType

from twisted.application.internet import ClientService, TimerService
from twisted.application.service import MultiService
from twisted.internet.interfaces import IReactorTCP
from twisted.internet.protocol import Factory

from senselink.config.broker import BrokerSettings
from senselink.excerpt import clip, shown_name
from senselink.log import Logger
from senselink.mqttclient import Lost, SessionProtocol, broker_endpoint, retry_backoff
from senselink.mqttsession import Accepted, NoAnswer, ProtocolError, Refused
from senselink.publish.discovery import OFFLINE, ONLINE, PlugTopics, status_topic
from senselink.publish.feeds import PlugFeed
from senselink.publish.outbox import Outbox
from senselink.publish.session import FLUSH, PublisherSession
from senselink.sessiondriver import Stalled
from senselink.sources.base import Complaints, Readiness, ReportingEndpoint

log = Logger()

MAX_TOPICS = 64 * 1024       # messages waiting for the broker, at most (one per topic)
# Keys whose change needs a new connection (the others apply to the running publisher).
CONNECTION_KEYS = tuple(f.name for f in dataclasses.fields(BrokerSettings)) + (
    "topic_prefix", "discovery", "discovery_prefix")


def default_client_id(settings):
    """A client id that stays the same across restarts of this host with these settings."""
    seed = "\0".join(str(part) for part in (socket.gethostname(), settings.host,
                                            settings.port, settings.username,
                                            settings.topic_prefix))
    return "senselink-pub-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]


def chosen(settings, plugs):
    """The plugs to publish: those the settings name, else those Sense sees."""
    if settings.plugs is None:
        return list(plugs.reported)
    return [plugs[plug_id] for plug_id in settings.plugs if plug_id in plugs]


class Publisher(MultiService):
    """Publishes plugs' watts and kWh, with Home Assistant discovery, to one broker."""

    kind = "publish"

    def __init__(self, settings, hub, meter, clock, reactor=None, endpoint=None):
        """
        @param hub: the plugs in use (a L{senselink.plughub.PlugHub}), followed while running.
        @param meter: the energy counters (L{senselink.energy.counters.EnergyMeter}).
        @param clock: time for timers: rate limits, energy, reconnection, keepalive.
        @param reactor: the network (default: C{clock} when it is a reactor).
        @param endpoint: a client endpoint to use instead of the configured one.
        """
        super().__init__()
        self.setName("publish")
        if reactor is None:
            if IReactorTCP.providedBy(clock):
                reactor = clock
            else:
                from twisted.internet import reactor
        self.settings = settings
        self.clock = clock
        self.meter = meter
        self.client_id = settings.client_id or default_client_id(settings)
        self.label = f"{settings.host}:{settings.broker_port}"
        self.status_topic = status_topic(settings.topic_prefix)
        self.offline = OFFLINE
        self.outbox = Outbox(MAX_TOPICS)
        self.hub = hub
        self.subscription = None     # following the hub, while running
        self.feeds = {}              # the plug's node (from its MAC) -> PlugFeed
        self.by_id = {}              # plug id -> its PlugFeed
        self.session = None          # the connection (SessionProtocol) whose session is up
        self.connected = False
        self.last_error = None
        self.complaints = Complaints(log)
        self._refusal_logged = False
        self._backoff = retry_backoff()
        self.readiness = Readiness(self.retry_delay, clock)
        if endpoint is None:
            endpoint = broker_endpoint(reactor, settings)
        self.client_service = ClientService(
            ReportingEndpoint(endpoint, self._cannot_connect, f"MQTT broker {self.label}"),
            PublisherFactory(self), retryPolicy=self.readiness.retry_delay, clock=clock)
        self.client_service.setServiceParent(self)
        self.energy_timer = None
        self._energy_every(settings.energy_interval)
        self.replace_plugs(hub.plugs)

    # -- what is published --

    def put(self, topic, payload, qos=0, retain=True):
        """Queue a message (the latest per topic wins) and send it if connected."""
        if not self.outbox.put(topic, payload, qos, retain):
            self.complaints.problem("full", "MQTT publisher: {n} topics wait for broker "
                                    "{label}; newer topics are dropped until it is back",
                                    n=len(self.outbox), label=self.label)
        if self.session is not None:
            self.session.tell(FLUSH)

    def energy(self):
        """Queue every plug's kWh."""
        for feed in self.feeds.values():
            feed.energy_now(self.meter)

    def everything(self):
        """Queue all there is to say: online, the configs, every plug's watts and kWh."""
        self.put(self.status_topic, ONLINE, qos=1)
        for feed in self.feeds.values():
            feed.configs(force=True)
        for feed in self.feeds.values():
            feed.power()
            feed.energy_now(self.meter)

    def plug_changed(self, plug, now=None):
        """A plug in use changed (the hub's call): its feed, if it is published, goes on."""
        feed = self.by_id.get(plug.id)
        if feed is not None and feed.plug is plug:
            feed.changed(plug, now)

    def replace_plugs(self, plugs):
        """Publish the chosen plugs of C{plugs} (a PlugSet) from now on.

        A plug no longer published has its configs and states cleared (empty
        retained messages); a kept one whose config changed (a new alias) has
        it sent again; a new one is published whole.
        """
        old = self.feeds
        self.feeds = {}
        for plug in chosen(self.settings, plugs):
            topics = PlugTopics(plug, self.settings)
            feed = old.pop(topics.node, None)
            if feed is not None and feed.topics.state != topics.state:
                self._clear(feed.topics.state.values())
                feed.stop()
                feed = None
            if feed is None:
                feed = PlugFeed(plug, topics, self)
                fresh = True
            else:
                feed.rebind(plug, topics)
                fresh = False
            self.feeds[topics.node] = feed
            feed.configs()
            if fresh and self.running:
                feed.power()
                feed.energy_now(self.meter)
        self.by_id = {feed.plug.id: feed for feed in self.feeds.values()}
        for feed in old.values():
            feed.stop()
            self._clear(list(feed.topics.config.values()) + list(feed.topics.state.values()))
            log.info("MQTT publisher: cleared plug {plug} from broker {label}",
                     plug=shown_name(feed.plug.id), label=self.label)

    def _clear(self, topics):
        for topic in topics:
            self.put(topic, b"", qos=1)

    def reconfigure(self, settings):
        """Apply new settings in place: False when they need a new connection."""
        if any(getattr(settings, key) != getattr(self.settings, key) for key in CONNECTION_KEYS):
            return False
        self.settings = settings
        if self.energy_timer.step != settings.energy_interval:
            self._energy_every(settings.energy_interval)
        self.replace_plugs(self.hub.plugs)
        return True

    def _energy_every(self, seconds):
        """kWh every C{seconds} (a TimerService on the clock, instead of the one before)."""
        if self.energy_timer is not None:
            self.energy_timer.disownServiceParent()
        self.energy_timer = TimerService(seconds, self.energy)
        self.energy_timer.clock = self.clock
        self.energy_timer.setServiceParent(self)

    # -- life --

    def startService(self):
        super().startService()
        self.subscription = self.hub.subscribe(changed=self.plug_changed,
                                               replaced=self.replace_plugs)
        self.everything()
        log.info("Publishing {n} plug(s) to MQTT broker {label} under {prefix}/",
                 n=len(self.feeds), label=self.label, prefix=self.settings.topic_prefix)

    def stopService(self):
        """kWh and C{offline} once more, DISCONNECT, then the connection's end."""
        self.energy()
        self.put(self.status_topic, OFFLINE, qos=1)
        if self.subscription is not None:
            self.subscription.cancel()
            self.subscription = None
        for feed in self.feeds.values():
            feed.stop()
        session = self.session
        if session is not None:
            session.disconnect()
        self.readiness.cancel_waiters("the MQTT publisher stopped")
        return super().stopService()

    def when_ready(self):
        """A Deferred that fires once the current or next session is accepted."""
        return self.readiness.when_ready()

    # -- the session, as its events tell --

    def hear(self, session, event):
        """An event of the session on the connection C{session} (a SessionProtocol)."""
        handler = self._handlers.get(event.__class__)
        if handler is not None:
            handler(self, session, event)

    def retry_delay(self, attempts):
        delay = min(60.0, self._backoff(attempts))
        log.info("Reconnecting to MQTT broker {label} (publisher) in {delay:.1f} s",
                 label=self.label, delay=delay)
        return delay

    def _cannot_connect(self, failure):
        if self.running:
            self.last_error = f"cannot connect to {self.label}: {_why(failure)}"
            self.complaints.problem(
                "connection", "MQTT publisher cannot connect to broker {label}: {reason}; "
                "the latest values wait; retrying with back-off",
                label=self.label, reason=_why(failure))
        return failure

    def _connection_ready(self, session, event):
        self.complaints.resolved("connection")
        self.complaints.resolved("full")
        if self._refusal_logged:
            log.info("MQTT broker {label} accepted the publisher again", label=self.label)
        self._refusal_logged = False
        self.last_error = None
        self.session = session
        self.connected = True
        self.readiness.ready(session)
        log.info("MQTT publisher connected to broker {label} as {client_id}: publishing "
                 "{n} plug(s)", label=self.label, client_id=self.client_id, n=len(self.feeds))
        self.everything()
        session.tell(FLUSH)

    def _refused(self, session, event):
        code = event.code
        what = f"{code.reason} (CONNACK return code {int(code)})"
        self.last_error = f"{self.label} refused the publisher: {what}"
        if not self._refusal_logged:
            self._refusal_logged = True
            log.error("MQTT broker {label} refused the publisher: {reason}; check username "
                      "and password of the publish section; retrying with back-off",
                      label=self.label, reason=what)

    def _protocol_error(self, session, event):
        reason = event.reason
        self.last_error = f"{self.label} sent what MQTT 3.1.1 does not allow: {clip(reason)}"
        log.error("MQTT broker {label} sent the publisher what MQTT 3.1.1 does not allow "
                  "here: {reason}; reconnecting", label=self.label, reason=clip(reason))

    def _stalled(self, session, event):
        self.last_error = (f"{self.label} did not read what the publisher sent for "
                           f"{event.seconds:g} s")
        log.warn("MQTT broker {label} did not read what the publisher sent for {seconds:g} s; "
                 "dropped; reconnecting", label=self.label, seconds=event.seconds)

    def _no_answer(self, session, event):
        what, seconds = event.what, event.seconds
        self.last_error = f"{self.label} did not answer {what} within {seconds:g} s"
        log.warn("MQTT broker {label} did not answer the publisher's {what} within "
                 "{seconds:g} s; reconnecting", label=self.label, what=what, seconds=seconds)

    def _connection_lost(self, session, event):
        reason = event.reason
        was_ready = self.readiness.ended(session)
        if session is not self.session:
            return
        self.session = None
        self.connected = False
        if self.running and was_ready and not event.reported:
            self.last_error = f"lost the connection to {self.label}: {_why(reason)}"
            log.warn("MQTT publisher lost the connection to broker {label}: {reason}; the "
                     "latest values wait; reconnecting", label=self.label, reason=_why(reason))


    _handlers = MappingProxyType({
        Accepted: _connection_ready, Refused: _refused, ProtocolError: _protocol_error,
        NoAnswer: _no_answer, Stalled: _stalled, Lost: _connection_lost})


class PublisherFactory(Factory):
    """Builds one connection (a L{PublisherSession} on a SessionProtocol) per attempt."""

    noisy = False

    def __init__(self, service):
        self.service = service

    def buildProtocol(self, addr):
        service = self.service
        session = PublisherSession(service.settings, service.client_id, service.status_topic,
                                   service.offline, service.outbox)
        return SessionProtocol(session, service.clock, service.hear)


def _why(failure):
    return clip(failure.getErrorMessage().strip().rstrip("."))
