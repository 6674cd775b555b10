"""The C{hass} source service: one websocket connection that feeds the source's plugs."""

import os
import random
from urllib.parse import urlsplit, urlunsplit

from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.logger import LogLevel

from senselink.log import Logger
from senselink.regularfile import UnreadableFile, read_regular
from senselink.sessiondriver import Stalled
from senselink.sources.base import Complaints, Readiness, ReportingEndpoint, SourceService
from senselink.sources.hass.protocol import HassClientFactory
from senselink.sources.hass.entityplugs import EntityPlugs
from senselink.sources.hass.events import (Authenticated, AuthRejected, EntityChanged, Info,
                                           MissingEntities, Problem, Ready)
from senselink.sources.hass.session import MESSAGE_TIMEOUT, HassSession
from senselink.sources.tls import UnverifiedTLS, client_tls, load_ca_file
from senselink.urls import safe_url

log = Logger(namespace="senselink.sources.hass")

# url: supervisor (the default inside a Home Assistant app): Home Assistant through the
# Supervisor's proxy, authenticated with the $SUPERVISOR_TOKEN it gives the app.
SUPERVISOR = "supervisor"

# A Home Assistant long-lived access token is some 200 characters.
MAX_TOKEN_FILE = 64 * 1024


def supervisor_url(environ=None) -> str:
    """C{ws://supervisor/core/api/websocket}, or that path under C{$SUPERVISOR_API} when set."""
    environ = os.environ if environ is None else environ
    parts = urlsplit((environ.get("SUPERVISOR_API") or "http://supervisor").strip())
    scheme = "wss" if parts.scheme.lower() in ("https", "wss") else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/core/api/websocket", "", ""))


def supervisor_token(environ=None) -> str:
    """C{$SUPERVISOR_TOKEN}, stripped; ValueError when it is not set."""
    environ = os.environ if environ is None else environ
    token = (environ.get("SUPERVISOR_TOKEN") or "").strip()
    if not token:
        raise ValueError("SUPERVISOR_TOKEN is not set (the Supervisor sets it in apps with "
                         "homeassistant_api: true)")
    return token


def read_token_file(path: str) -> str:
    """The token in C{path}, stripped; ValueError (unreadable, not a regular file, larger
    than L{MAX_TOKEN_FILE}, not UTF-8, empty) otherwise."""
    try:
        data = read_regular(path, MAX_TOKEN_FILE, "token file")
    except UnreadableFile as e:
        raise ValueError(str(e)) from None
    try:
        token = data.decode("utf-8").strip()
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not token:
        raise ValueError("the file is empty")
    return token


class HassService(SourceService):
    """Keeps one websocket connection to Home Assistant and feeds the source's plugs."""

    kind = "hass"
    initial_delay = 1.0
    max_delay = 60.0
    factor = 2.0             # delays: 1, 2, 4, ... 60 s, plus up to 1 s of jitter
    ping_interval = 30.0
    ping_timeout = 10.0
    message_timeout = MESSAGE_TIMEOUT

    def __init__(self, source, plugs, clock, *, reactor=None, random=random.random,
                 ping_interval=None, ping_timeout=None, message_timeout=None, endpoint=None):
        """
        @param clock: time for timeouts, keepalive and reconnection delays.
        @param reactor: the network (default: the global reactor).
        @param random: draws the jitter of reconnection delays, in [0, 1) seconds.
        @param endpoint: a client endpoint to use instead of the configured one.
        """
        super().__init__(clock)
        if reactor is None:
            from twisted.internet import reactor
        self.reactor = reactor
        self.random = random
        if ping_interval is not None:
            self.ping_interval = ping_interval
        if ping_timeout is not None:
            self.ping_timeout = ping_timeout
        if message_timeout is not None:
            self.message_timeout = message_timeout
        settings = source.settings
        self.supervisor = settings.supervisor
        self.url = supervisor_url() if self.supervisor else settings.url
        parts = urlsplit(self.url)
        self.label = safe_url(self.url)
        self._token = settings.auth_token
        self._token_file = settings.auth_token_file
        self.max_message_size = settings.message_limit
        self.complaints = Complaints(log)
        self.entities = EntityPlugs(source, plugs, clock, self.complaints, self.label)
        self.feeds.extend(self.entities.feeds)
        self.bindings = self.entities.bindings
        self.entity_ids = self.entities.entity_ids
        self.session = None         # the HassSession of the authenticated connection
        self.connection = None      # the HassClientProtocol of the newest connection
        self.sessions = 0           # authenticated sessions so far
        self.readiness = Readiness(self.retry_delay, clock)
        self._rejected = False      # the last auth attempt was refused
        self._said = set()          # Problem.once keys logged since a session was last ready
        self.factory = HassClientFactory(self, self.url, reactor)
        if endpoint is None:
            endpoint = self._endpoint(parts, settings)
        endpoint = ReportingEndpoint(endpoint, self.connect_failed,
                                     f"Home Assistant endpoint {self.label}")
        self.client = ClientService(endpoint, self.factory, retryPolicy=self.readiness.retry_delay,
                                    clock=clock)
        self.client.setServiceParent(self)

    def _endpoint(self, parts, settings):
        secure = parts.scheme == "wss"
        host = parts.hostname
        port = parts.port or (443 if secure else 80)
        endpoint = HostnameEndpoint(self.reactor, host, port, timeout=self.ping_timeout)
        if not secure:
            return endpoint
        if not settings.verify_tls:
            creator = UnverifiedTLS(host)
        else:
            ca_file = settings.ca_file
            creator = client_tls(host, trust=load_ca_file(ca_file) if ca_file else None)
        return wrapClientTLS(creator, endpoint)

    @property
    def protocol(self):
        """L{session}, under the name callers used when the protocol held the session."""
        return self.session

    def when_ready(self):
        """A Deferred that fires with the session once the current or next one has subscribed."""
        return self.readiness.when_ready()

    def stopService(self):
        if self.session is not None and self.connection is not None:
            self.connection.close(1000)    # a polite goodbye before the connection is closed
        self.readiness.cancel_waiters("the Home Assistant source stopped")
        return super().stopService()

    def connect_failed(self, failure):
        self.last_error = f"cannot connect to {self.label}: {failure.getErrorMessage()}"
        self.complaints.problem("connect", "Cannot connect to Home Assistant at {url}: {reason}",
                                url=self.label, reason=failure.getErrorMessage())

    # -- token, never logged --

    def token(self) -> str:
        if self._token_file is not None:
            return read_token_file(self._token_file)
        if self._token is None and self.supervisor:
            return supervisor_token()
        return self._token.strip()

    # -- reconnecting --

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next connection attempt after C{attempts} failed ones in a row.

        Twisted's C{backoffPolicy}: 1, 2, 4, ... capped at 60 s, plus up to
        1 s of jitter; after Home Assistant refused the token, only the slow
        end. Sessions that ended before they were ready, or soon after, count
        as failed attempts (L{Readiness}).
        """
        spread = min(1.0, self.initial_delay)      # the jitter: up to 1 s
        if self._rejected:
            delay = self.max_delay + spread * self.random()
        else:
            policy = backoffPolicy(self.initial_delay, self.max_delay, self.factor,
                                   jitter=lambda: spread * self.random())
            delay = policy(max(attempts, 1) - 1)
        log.info("Reconnecting to Home Assistant at {url} in {delay:.1f} s",
                 url=self.label, delay=delay)
        return delay

    # -- sessions: made for each connection, their events, their end --

    def new_session(self, connection):
        """The session of a new connection (the link it rides on)."""
        self.connection = connection
        return HassSession(self.entity_ids, self.token, ping_interval=self.ping_interval,
                           ping_timeout=self.ping_timeout, message_timeout=self.message_timeout)

    def session_event(self, session, event):
        """An event of C{session}, in order."""
        event_type = type(event)
        if event_type is EntityChanged:
            self.entity_changed(event.entity_id, event.state)
        elif event_type is Problem:
            self.problem(event)
        elif event_type is Authenticated:
            self.authenticated(session, event.version)
        elif event_type is Ready:
            self.readiness.ready(session)
            self._said.clear()
        elif event_type is MissingEntities:
            self.entities.missing(event.entity_ids)
        elif event_type is AuthRejected:
            self.auth_rejected(event.message)
        elif event_type is Info:
            log.info("Home Assistant at {url} {what}", url=self.label, what=event.text)
        elif event_type is Stalled:
            self.last_error = f"{self.label} did not read what we sent"
            log.warn("Home Assistant at {url} left what we sent unread for {seconds:g} s: "
                     "dropped, reconnecting", url=self.label, seconds=event.seconds)

    def problem(self, event):
        if event.fatal:
            self.last_error = f"{self.label} {event.text}"
        if event.once is not None:
            if event.once in self._said:
                return      # said since the last ready session: once is enough
            self._said.add(event.once)
        log.emit(LogLevel.levelWithName(event.level), "Home Assistant at {url} {problem}", url=self.label,
                 problem=event.text)

    def authenticated(self, session, version):
        self.complaints.resolved("connect")
        self.session = session
        self.connected = True
        self.last_error = None
        self.sessions += 1
        if self._rejected:
            self._rejected = False
        log.info("Connected to Home Assistant {version} at {url}", version=version, url=self.label)

    def auth_rejected(self, message):
        self.last_error = f"authentication rejected by {self.label}"
        if not self._rejected:
            self._rejected = True
            log.error("Home Assistant at {url} rejected the access token ({reason}); "
                      "retrying every minute or so. Check auth_token / auth_token_file.",
                      url=self.label, reason=message)
        else:
            log.debug("Home Assistant at {url} still rejects the access token", url=self.label)

    def session_closed(self, session, how, dropped=False):
        """The connection of C{session} ended: C{how} in words; C{dropped}: by us, and the
        session said why already."""
        if self.session is session:
            self.session = None
        was_connected = self.connected
        self.connected = False
        self.readiness.ended(session)
        if not self.running or dropped or self._rejected:
            return
        if not was_connected:
            self.last_error = f"the connection to {self.label} ended before authentication ({how})"
            self.complaints.problem(
                "connect", "Cannot connect to Home Assistant at {url}: the connection ended "
                "before authentication ({reason})", url=self.label, reason=how)
        else:
            self.last_error = f"disconnected from {self.label} ({how})"
            log.warn("Disconnected from Home Assistant at {url} ({reason}); plugs keep their "
                     "last values", url=self.label, reason=how)

    # -- values --

    def entity_changed(self, eid, state):
        """A state object arrived for C{eid} (None: the entity is gone)."""
        self.touch()
        self.entities.changed(eid, state)
