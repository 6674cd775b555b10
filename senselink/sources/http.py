"""HTTP plugs: one GET per interval per source, values read from the JSON body.

A source polls one URL; each of its plugs reads its values from the body
with C{power_keypath} (or C{power_keypaths}, summed, or C{current_keypath}
x C{voltage_keypath}) / C{state_keypath} / C{attribute_keypath} (keypaths
into the JSON document, as for Home Assistant plugs), or uses the whole
body as a number of watts when no keypath is given. Polls never overlap: a
tick that finds the previous request still running is skipped and counted.
Failures (non-2xx replies, time-outs, connection errors, invalid JSON,
missing keys) keep the last good values and are logged once per failure
streak, with a line when the source works again.
"""

import base64
import json
from urllib.parse import unquote, urlsplit, urlunsplit

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.web.client import HTTPConnectionPool, ResponseFailed, ResponseNeverReceived

from senselink.config import SourceKind, check_power_paths
from senselink.config.schema import PlugSettings
from senselink.config.settings import field_table
from senselink.excerpt import MAX_MESSAGE, clip
from senselink.jsondepth import too_deep
from senselink.keypath import MISSING, lookup, split
from senselink.log import Logger
from senselink.power import Feed, PowerModel, UnreadableValue
from senselink.readings import PowerPaths
from senselink.sources.base import Complaints, SourceService
from senselink.sources.httpclient import MAX_BODY, PollFailed
from senselink.sources.httpfetch import Fetcher
from senselink.sources.httpsettings import HttpPlugSettings, HttpSourceSettings
from senselink.urls import safe_url

log = Logger()

USER_AGENT = b"SenseLink"
MAX_DEPTH = 64          # nesting levels of a JSON body; a deeper one is not read


def split_userinfo(url: str):
    """C{(url without user:password, Basic Authorization header value or None)}."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    netloc = parts.netloc.rpartition("@")[2]
    credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    header = b"Basic " + base64.b64encode(credentials.encode("utf-8"))
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), header


class HttpKind(SourceKind):
    name = "http"
    doc = "Values polled from an HTTP(S) URL returning JSON or a plain number"
    source_settings = HttpSourceSettings
    plug_settings = HttpPlugSettings
    source_fields = field_table(HttpSourceSettings)
    plug_fields = field_table(HttpPlugSettings, besides=PlugSettings)

    def check(self, source, where):
        settings = source.settings
        if settings.ca_file and settings.verify_tls is False:
            where.child("ca_file").error("ca_file has no effect with verify_tls: false")
        for plug in source.plugs:
            s = plug.settings
            measured = check_power_paths(s, plug.where)
            if measured and s.attribute_keypath:
                plug.where.error(f"{measured[0]} and attribute_keypath exclude each other; "
                                  "use one of them")
            if s.state_power and not s.state_keypath:
                plug.where.error("state_power needs state_keypath (where the state is in the body)")
            if s.attribute_keypath and s.attribute_max is None and not s.power_curve:
                plug.where.error("attribute_keypath needs attribute_max (or a power_curve) "
                                  "to scale the attribute to watts")

    def initial(self, plug):
        return PowerModel.from_settings(plug.settings, plug.max_plug_watts).off_usage, None

    def make_service(self, source, plugs, clock):
        return HttpPollService(source, plugs, clock)


# ---------------------------------------------------------------- polling


class _Reader:
    """How one plug reads its values from a polled document."""

    def __init__(self, settings):
        self.power = PowerPaths.from_settings(settings)
        self.state = split(settings.state_keypath) if settings.state_keypath else None
        self.attribute = split(settings.attribute_keypath) if settings.attribute_keypath else None
        self.whole = self.power is None and self.state is None and self.attribute is None
        if self.whole:
            self.power = PowerPaths(single=())

    def values(self, document):
        """Keyword arguments for L{Feed.entity}; L{UnreadableValue} for a missing key."""
        out = {}
        for name in ("state", "attribute"):
            path = getattr(self, name)
            if path is None:
                continue
            value = lookup(document, path)
            if value is MISSING:
                raise UnreadableValue(f"no {name}_keypath {'/'.join(path)!r} in the body")
            out[name] = value
        if self.power is not None:
            value = out["power"] = self.power.read(document)
            if value is MISSING:
                raise UnreadableValue(f"no power_keypath {'/'.join(self.power.single)!r} "
                                      f"in the body")
        return out


class _NotJSON:
    """The body was not JSON; plugs reading it whole may still find a number in it."""

    def __init__(self, text, reason):
        self.text = text
        self.reason = reason


class HttpPollService(SourceService):
    """Polls one URL every C{interval} seconds and feeds the source's plugs.

    C{clock} times the polls (a C{task.Clock} in tests); C{reactor} makes
    the connections (default: C{clock}).
    """

    kind = "http"

    def __init__(self, source, plugs, clock, reactor=None, body_limit=MAX_BODY):
        super().__init__(clock)
        settings = source.settings
        self.url, basic_auth = split_userinfo(settings.url)
        self.label = safe_url(self.url)
        self.interval = settings.interval
        self.timeout = settings.timeout
        self.body_limit = body_limit
        self.reactor = reactor if reactor is not None else clock
        headers = {"User-Agent": [USER_AGENT], "Accept": [b"application/json, text/plain"],
                   "Accept-Encoding": [b"gzip"]}
        self.plain_headers = dict(headers)    # for a host the user did not name
        configured = settings.headers or {}
        if basic_auth is not None and not any(n.lower() == "authorization" for n in configured):
            headers["Authorization"] = [basic_auth]
        for name, value in configured.items():
            headers[name] = [value.encode("utf-8")]
        self.headers = headers
        self._settings = settings
        self.polls = 0          # requests started
        self.skipped = 0        # ticks skipped because the previous poll was still running
        self.failures = 0       # polls that gave no usable body
        self.complaints = Complaints(log)
        self.readers = []
        for pc in source.plugs:
            reader = _Reader(pc.settings)
            model = PowerModel.from_settings(pc.settings, pc.max_plug_watts)
            feed = Feed(plugs[pc.id], model, clock,
                        timeout=pc.settings.timeout_duration,
                        uses_power=reader.power is not None,
                        uses_attribute=reader.attribute is not None)
            self.feeds.append(feed)
            self.readers.append((pc.id, reader, feed))
        self._needs_json = any(not reader.whole for _, reader, _ in self.readers)
        self._loop = None
        self._pool = None
        self._timed_out = False
        self._stopping = False
        self.current_poll = None    # the Deferred of the poll in progress

    # -- lifecycle --

    def startService(self):
        super().startService()
        self._stopping = False
        self._pool = HTTPConnectionPool(self.reactor, persistent=True)
        self._pool.maxPersistentPerHost = 1
        self._fetcher = Fetcher(self.reactor, self._pool, self._settings, self.url, self.headers,
                                self.plain_headers, self.body_limit)
        log.info("Polling {url} every {interval} s for {n} plugs", url=self.label,
                 interval=self.interval, n=len(self.readers))
        self._loop = LoopingCall(self.tick)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True)

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        self._stopping = True
        if self.current_poll is not None:
            self.current_poll.cancel()
        self.connected = False
        waits = [defer.maybeDeferred(super().stopService)]
        if self._pool is not None:
            waits.append(self._pool.closeCachedConnections())
            self._pool = None
        return defer.gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    # -- polling --

    def tick(self):
        """One interval: start a poll unless the previous one still runs."""
        if self.current_poll is not None:
            self.skipped += 1
            log.debug("Previous poll of {url} still running: skipped this one ({n} skipped)",
                      url=self.label, n=self.skipped)
            return
        self.polls += 1
        d = self.current_poll = defer.maybeDeferred(self._poll)
        d.addCallbacks(self._got, self._failed)
        d.addErrback(lambda f: log.failure("Unexpected error polling {url}", f, url=self.label))
        d.addBoth(self._done)

    def _poll(self):
        self._timed_out = False
        d = self._fetcher.get()
        timer = self.clock.callLater(self.timeout, self._time_out, d)

        def stop_timer(result):
            if timer.active():
                timer.cancel()
            return result
        return d.addBoth(stop_timer)

    def _time_out(self, d):
        self._timed_out = True
        d.cancel()

    def _done(self, _):
        self.current_poll = None

    def _got(self, body):
        self.connected = True
        self.touch()
        try:
            text = body.decode("utf-8")
            if too_deep(text, MAX_DEPTH):
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels, or its brackets "
                                 f"do not close")
            document = json.loads(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            document = _NotJSON(body, clip(str(e), MAX_MESSAGE))
        self.complaints.resolved("poll", "Polling {url} works again", url=self.label)
        not_json = isinstance(document, _NotJSON)
        self.last_error = None
        if not_json and self._needs_json:
            self.last_error = f"the reply of {self.label} is not valid JSON ({document.reason})"
            self.complaints.problem("json", "Polling {url}: the body is not valid JSON ({reason}); "
                                    "keeping the last values of plugs reading keypaths",
                                    url=self.label, reason=document.reason)
        elif not not_json:
            self.complaints.resolved("json", "Polling {url}: the body is valid JSON again",
                                     url=self.label)
        for plug_id, reader, feed in self.readers:
            try:
                if not_json:
                    if not reader.whole:
                        continue
                    values = {"power": document.text}
                else:
                    values = reader.values(document)
                watts = feed.entity(**values)
            except UnreadableValue as e:
                self.last_error = f"plug {plug_id}: cannot use the reply of {self.label}: {e}"
                self.complaints.problem(
                    plug_id, "HTTP plug {plug}: cannot use the reply of {url}: {reason}; "
                    "keeping {watts} W", plug=plug_id, url=self.label, reason=clip(str(e), MAX_MESSAGE),
                    watts=feed.plug.watts)
                continue
            self.complaints.resolved(plug_id, "HTTP plug {plug} reads {url} again: {watts} W",
                                     plug=plug_id, url=self.label, watts=watts)
            log.debug("HTTP plug {plug}: {watts} W from {url}", plug=plug_id, watts=watts,
                      url=self.label)

    def _failed(self, failure):
        self.connected = False
        if self._stopping:
            return   # cancelled because the service stops: not a problem of the source
        self.failures += 1
        if self._timed_out:
            reason = f"no complete reply within {self.timeout:g} s"
        elif failure.check(PollFailed):
            reason = str(failure.value)
        elif failure.check(ResponseFailed, ResponseNeverReceived):
            reason = "; ".join(r.getErrorMessage() for r in failure.value.reasons)
        else:
            # Connection errors name the host and port at most, never the headers.
            reason = failure.getErrorMessage() or failure.type.__name__
        self.last_error = f"polling {self.label} failed: {reason}"
        self.complaints.problem("poll", "Polling {url} failed: {reason}; keeping the last values "
                                "of {n} plugs", url=self.label, reason=reason, n=len(self.readers))
        log.debug("Polling {url} failed: {reason}", url=self.label, reason=reason)
