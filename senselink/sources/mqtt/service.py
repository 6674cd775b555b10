"""The C{mqtt} source service: one broker connection run by C{ClientService} (L{MqttService})."""

from types import MappingProxyType

from twisted.application.internet import ClientService
from twisted.internet.interfaces import IReactorTCP

from senselink.excerpt import clip
from senselink.log import Logger
from senselink.mqttclient import MAX_RETRY_DELAY, Lost, broker_endpoint, retry_backoff
from senselink.mqttsession import Accepted, NoAnswer, ProtocolError, Refused
from senselink.sessiondriver import Stalled
from senselink.sources.base import Complaints, Readiness, ReportingEndpoint, SourceService
from senselink.sources.mqtt.settings import default_client_id
from senselink.sources.mqtt.protocol import MqttClientFactory
from senselink.sources.mqtt.routes import Router
from senselink.sources.mqtt.session import Oversized, Subscribed

log = Logger()

__all__ = ("MAX_RETRY_DELAY", "MqttService", "why")


class MqttService(SourceService):
    """Feeds the plugs of one C{mqtt} source from one broker connection.

    C{ClientService} connects, and connects again with exponential back-off
    and jitter (at most 60 s) whenever the connection ends; sessions that
    ended before their subscription was answered count as failed attempts
    (L{Readiness}). Each connection is one L{MqttClientProtocol} session.
    """

    kind = "mqtt"

    def __init__(self, source, plugs, clock, reactor=None, endpoint=None):
        """
        @param clock: time for timers: staleness, reconnection, keepalive, answers awaited.
        @param reactor: the network (default: C{clock} when it is a reactor,
            else the global reactor).
        @param endpoint: a client endpoint to use instead of the configured one.
        """
        super().__init__(clock)
        if reactor is None:
            if IReactorTCP.providedBy(clock):
                reactor = clock
            else:
                from twisted.internet import reactor
        self.reactor = reactor
        self.settings = settings = source.settings
        self.host = settings.host
        self.port = settings.broker_port
        self.client_id = settings.client_id or default_client_id(source)
        self.max_payload = settings.max_payload_size
        user = settings.username
        self.label = f"{self.host}:{self.port}"
        self.user_text = f"user {user!r}" if user is not None else "no user (anonymous)"
        self.complaints = Complaints(log)
        self.router = Router(source, plugs, clock)
        self.feeds.extend(self.router.feeds)
        self.topics = self.router.topics
        self.connection = None     # the MqttClientProtocol whose session is up
        self.subscribe_requests = 0    # SUBSCRIBE packets sent, one per connection
        self.readiness = Readiness(self.retry_delay, clock)
        self._refusal_logged = False
        self._refused_topics = set()
        self._backoff = retry_backoff()
        if endpoint is None:
            endpoint = broker_endpoint(self.reactor, settings)
        self.client_service = ClientService(ReportingEndpoint(endpoint, self._cannot_connect,
                                                              f"MQTT broker {self.label}"),
                                            MqttClientFactory(self),
                                            retryPolicy=self.readiness.retry_delay, clock=clock)
        self.client_service.setServiceParent(self)

    @property
    def debug(self):
        return self.router.debug

    @debug.setter
    def debug(self, value):
        self.router.debug = value

    @property
    def messages(self):
        """Messages received on this source's topics (the broker's filtering included)."""
        return self.router.messages

    # -- reconnection --

    def retry_delay(self, attempts):
        """Seconds before the next attempt after C{attempts} failed ones in a row.

        Exponential back-off with jitter, capped at 60 s. Connections that
        closed before their subscription was answered count as failed
        attempts (L{Readiness}). Each reconnect is logged once, here, with a
        rounded delay (Twisted's own line for it is filtered).
        """
        delay = min(MAX_RETRY_DELAY, self._backoff(attempts))
        log.info("Reconnecting to MQTT broker {label} in {delay:.1f} s", label=self.label,
                 delay=delay)
        return delay

    def when_ready(self):
        """A Deferred that fires once the current or next connection has subscribed."""
        return self.readiness.when_ready()

    def _cannot_connect(self, failure):
        if self.running:
            self.last_error = f"cannot connect to {self.label}: {why(failure)}"
            self.complaints.problem(
                "connection", "Cannot connect to MQTT broker {label}: {reason}; plugs keep "
                "their last values; retrying with back-off",
                label=self.label, reason=why(failure))
        return failure

    # -- the session, as its events tell --

    def hear(self, connection, event):
        """An event of the session on C{connection} (an L{MqttClientProtocol})."""
        handler = self._handlers.get(event.__class__)
        if handler is not None:
            handler(self, connection, event)

    def _accepted(self, connection, event):
        """The broker accepted the CONNECT; the SUBSCRIBE (if any) follows."""
        self.complaints.resolved("connection")
        self.last_error = None
        if self._refusal_logged:
            log.info("MQTT broker {label} accepted {user} again", label=self.label,
                     user=self.user_text)
        self._refusal_logged = False
        self.connection = connection
        if self.topics:
            self.subscribe_requests += 1
        log.info("Connected to MQTT broker {label} as {client_id}; subscribing to {n} topic(s)",
                 label=self.label, client_id=self.client_id, n=len(self.topics))

    @property
    def subscribed(self):
        """The topics the broker granted on the current connection."""
        return self.connection.session.subscribed if self.connection is not None else []

    def _subscribed(self, connection, event):
        refused = event.refused
        for topic in refused:
            self.last_error = f"topic {topic} refused by the broker {self.label}"
            if topic not in self._refused_topics:
                self._refused_topics.add(topic)
                log.error("MQTT broker {label} refused the subscription to {topic} for {user} "
                          "(not authorised?); plugs on it keep their values: {plugs}",
                          label=self.label, topic=topic, user=self.user_text,
                          plugs=", ".join(self.router.plugs_on(topic)))
        for topic in list(self._refused_topics):
            if topic not in refused:
                self._refused_topics.discard(topic)
                log.info("MQTT broker {label} granted the subscription to {topic} again",
                         label=self.label, topic=topic)
        self.connected = True
        self.readiness.ready(connection)

    def _oversized(self, connection, event):
        self.router.oversized(event.topic, event.head, event.size)

    def _refused(self, connection, event):
        """The broker refused the CONNECT with return code C{code} (a ConnackCode)."""
        code = event.code
        what = f"{code.reason} (CONNACK return code {int(code)})"
        self.last_error = f"{self.label} refused the connection for {self.user_text}: {what}"
        if not self._refusal_logged:
            self._refusal_logged = True
            log.error("MQTT broker {label} refused the connection for {user}: {reason}; "
                      "check username and password of the mqtt source; retrying with back-off",
                      label=self.label, user=self.user_text, reason=what)
        else:
            log.info("MQTT broker {label} still refuses {user}: {reason}",
                     label=self.label, user=self.user_text, reason=what)

    def _protocol_error(self, connection, event):
        reason = clip(event.reason)
        self.last_error = f"{self.label} sent what MQTT 3.1.1 does not allow: {reason}"
        log.error("MQTT broker {label} sent what MQTT 3.1.1 does not allow here: {reason}; "
                  "reconnecting", label=self.label, reason=reason)

    def _stalled(self, connection, event):
        self.last_error = (f"{self.label} did not read what we sent for "
                           f"{event.seconds:g} s; we stopped reading it")
        log.warn("MQTT broker {label} did not read what the source sent for {seconds:g} s "
                 "(we stopped reading it meanwhile); dropped; reconnecting",
                 label=self.label, seconds=event.seconds)

    def _no_answer(self, connection, event):
        what, seconds = event.what, event.seconds
        self.last_error = f"{self.label} did not answer {what} within {seconds:g} s"
        log.warn("MQTT broker {label} did not answer {what} within {seconds:g} s; reconnecting",
                 label=self.label, what=what, seconds=seconds)

    def _lost(self, connection, event):
        reason = event.reason
        was_ready = self.readiness.ended(connection)
        if connection is self.connection:
            self.connection = None
            self.connected = False
            if self.running and was_ready and not event.reported:
                self.last_error = f"lost the connection to {self.label}: {why(reason)}"
                log.warn("Lost the connection to MQTT broker {label}: {reason}; plugs keep "
                         "their last values; reconnecting", label=self.label,
                         reason=why(reason))
        elif self.running and not event.reported:
            self.last_error = (f"the connection to {self.label} ended before the broker "
                               f"accepted the MQTT session: {why(reason)}")
            self.complaints.problem(
                "connection", "The connection to MQTT broker {label} ended before the "
                "broker accepted the MQTT session: {reason}; retrying with back-off",
                label=self.label, reason=why(reason))

    _handlers = MappingProxyType({
        Accepted: _accepted, Subscribed: _subscribed, Oversized: _oversized, Refused: _refused,
        ProtocolError: _protocol_error, NoAnswer: _no_answer, Stalled: _stalled, Lost: _lost})

    def stopService(self):
        connection = self.connection
        if connection is not None:
            connection.disconnect()
        self.readiness.cancel_waiters("the MQTT source stopped")
        return super().stopService()


def why(failure):
    """A failure's message for the middle of a log line (without its final period)."""
    return clip(failure.getErrorMessage().strip().rstrip("."))
