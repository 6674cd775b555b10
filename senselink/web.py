"""The web interface: a JSON API for the plugs, Prometheus metrics and a status page.

Off unless the config has a top-level C{web} section::

    web:
      listen: tcp:8080:interface=127.0.0.1   # a Twisted server endpoint string
      token: ${SENSELINK_TOKEN}              # needed by requests that change state

Routes: C{GET /api/plugs}, C{GET /api/plugs/<id>}, C{PUT /api/plugs/<id>}
(mutable plugs; C{Authorization: Bearer <token>}), C{GET /metrics}
(Prometheus text format), C{GET /} (a status page that refreshes itself).
"""

import hmac
import html
import json
import math
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from senselink import __version__
from senselink.log import Logger
from senselink.power import PowerModel

log = Logger()

MAX_BODY = 64 * 1024          # bytes; larger request bodies are refused with 413
REFRESH_SECONDS = 10          # the status page reloads itself this often
# Reasons the responder counts for requests it does not answer: always exported, 0 until seen.
IGNORED_REASONS = {"echo", "malformed", "oversized", "unsupported", "not_allowed", "rate_limited",
                   "reply_cap", "connection_limit", "send_buffer_full"}


# ---------------------------------------------------------------- config


from senselink.config.sections import WebOptions


# ---------------------------------------------------------------- helpers


def plug_summary(plug, now):
    """The JSON description of one plug."""
    updated = plug.updated
    out = {
        "id": plug.id,
        "alias": plug.alias,
        "mac": plug.mac,
        "device_id": plug.device_id,
        "kind": plug.kind,
        "watts": plug.watts,
        "on": plug.on,
        "updated": updated,
        "age": None if updated is None else max(0.0, now - updated),
        "reported": plug.reported,
        "aggregate": plug.aggregate.id if plug.aggregate is not None else None,
        "mutable": plug.kind == "mutable",
    }
    elements = getattr(plug, "elements", None)
    if elements is not None:
        out["elements"] = [element.id for element in elements]
    return out


def source_summary(index, source, now):
    last = source.last_update
    return {
        "index": index,
        "kind": source.kind,
        "label": source.label,
        "connected": bool(source.connected),
        "last_update": last,
        "age": None if last is None else max(0.0, now - last),
    }


def send_json(request, code, document):
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return json.dumps(document, indent=1).encode("utf-8") + b"\n"


def error(request, code, message):
    return send_json(request, code, {"error": message})


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------- requests


class LimitedRequest(Request):
    """A request whose body is dropped (and later refused) past L{MAX_BODY} bytes."""

    max_body = MAX_BODY
    body_too_large = False
    _body_size = 0

    def gotLength(self, length):
        if length is not None and length > self.max_body:
            self.body_too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.body_too_large:
            return
        self._body_size += len(data)
        if self._body_size > self.max_body:
            self.body_too_large = True
            self.content.seek(0)
            self.content.truncate()
            return
        super().handleContentChunk(data)


class WebSite(Site):
    """The site: access lines go to our log at DEBUG (scrapes and page reloads are frequent)."""

    noisy = False

    def log(self, request):
        log.debug("Web {method} {path} from {peer}: {code}",
                  method=request.method.decode("ascii", "replace"),
                  path=request.uri.decode("utf-8", "replace")[:200],
                  peer=getattr(request.getClientAddress(), "host", "?"), code=request.code)


# ---------------------------------------------------------------- resources


class _Base(Resource):
    def __init__(self, web):
        super().__init__()
        self.web = web


class PlugList(_Base):
    """C{/api/plugs}: every plug; C{/api/plugs/<id>}: one plug."""

    def getChild(self, name, request):
        if name == b"":
            return self
        try:
            plug_id = name.decode("utf-8")
        except UnicodeDecodeError:
            plug_id = None
        return PlugResource(self.web, plug_id)

    def render_GET(self, request):
        now = self.web.now()
        return send_json(request, 200, {"plugs": [plug_summary(p, now)
                                                  for p in self.web.plugs]})


class PlugResource(_Base):
    isLeaf = True

    def __init__(self, web, plug_id):
        super().__init__(web)
        self.plug_id = plug_id

    def _plug(self):
        plug = self.web.plugs.get(self.plug_id) if self.plug_id is not None else None
        if plug is None:
            shown = self.plug_id if self.plug_id is None else self.plug_id[:100]
            raise ApiError(404, f"no plug with id {shown!r}")
        return plug

    def render_GET(self, request):
        if request.postpath and request.postpath != [b""]:
            return error(request, 404, "not found")
        try:
            plug = self._plug()
        except ApiError as e:
            return error(request, e.code, e.message)
        return send_json(request, 200, plug_summary(plug, self.web.now()))

    def render_PUT(self, request):
        try:
            if not self.web.token:
                raise ApiError(403, "no token is configured (web: token:): the API is read-only")
            if not self.web.authorized(request):
                request.setHeader(b"WWW-Authenticate", b'Bearer realm="senselink"')
                raise ApiError(401, "a valid 'Authorization: Bearer <token>' header is required")
            if request.postpath and request.postpath != [b""]:
                raise ApiError(404, "not found")
            if getattr(request, "body_too_large", False):
                request.setHeader(b"Connection", b"close")
                raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
            plug = self._plug()
            if plug.kind != "mutable":
                raise ApiError(409, f"plug {plug.id!r} is a {plug.kind} plug; only mutable "
                                    f"plugs can be changed")
            watts, on = self._read_change(request, plug)
            try:
                self.web.service.set_power(plug.id, watts, on)
            except (TypeError, ValueError) as e:
                raise ApiError(400, str(e)) from None
        except ApiError as e:
            return error(request, e.code, e.message)
        return send_json(request, 200, plug_summary(plug, self.web.now()))

    def _read_change(self, request, plug):
        request.content.seek(0)
        raw = request.content.read(MAX_BODY + 1)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, 'expected a JSON object like {"power": 42.5} or '
                                '{"state": "on"}') from None
        if not isinstance(body, dict) or not body:
            raise ApiError(400, 'expected a JSON object like {"power": 42.5} or {"state": "on"}')
        unknown = sorted(k for k in body if k not in ("power", "state"))
        if unknown:
            raise ApiError(400, f"unknown key {unknown[0]!r}; use power and/or state")
        on = None
        if "state" in body:
            state = body["state"]
            if state not in ("on", "off"):
                raise ApiError(400, 'state must be "on" or "off"')
            on = state == "on"
        if "power" in body:
            watts = body["power"]
            try:
                if isinstance(watts, bool) or not isinstance(watts, (int, float)):
                    raise ValueError
                watts = float(watts)   # OverflowError for integers too large for a float
            except (ValueError, OverflowError):
                watts = math.nan
            if not math.isfinite(watts) or watts < 0:
                raise ApiError(400, "power must be a finite number >= 0 (watts)")
            return watts, on
        model = self.web.model(plug.id)
        if on:
            watts = model.max_watts if model.max_watts > 0 else self.web.initial_power(plug.id)
            return watts, True
        return model.off_usage, False


class Metrics(_Base):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"Cache-Control", b"no-store")
        return generate_latest(self.web.registry)


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
        counters = web.service.responder.counters
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
        yield connected
        yield age


# ---------------------------------------------------------------- status page

_CSS = """
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #c62828; --dim: #777; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       padding: 1rem; max-width: 48rem; margin-inline: auto; line-height: 1.4; }
h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
h2 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
p.meta { color: var(--dim); margin: 0; font-size: .85rem; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .45rem .3rem; border-bottom: 1px solid #8884; }
th { font-size: .8rem; color: var(--dim); font-weight: 600; }
td.w { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
small { color: var(--dim); display: block; }
.on { color: var(--ok); } .off { color: var(--dim); }
.up { color: var(--ok); font-weight: 600; } .down { color: var(--bad); font-weight: 600; }
.total { font-size: 1.6rem; font-weight: 700; margin: .5rem 0; }
"""


def _age(seconds):
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _watts(value):
    return f"{value:,.1f} W"


def status_page(web) -> bytes:
    now = web.now()
    e = html.escape
    reported_total = sum(p.watts for p in web.plugs.reported)
    rows = []
    for plug in web.plugs:
        place = "reported" if plug.reported else f"in {e(plug.aggregate.alias)}"
        state = '<span class="on">on</span>' if plug.on else '<span class="off">off</span>'
        age = None if plug.updated is None else max(0.0, now - plug.updated)
        rows.append(
            f"<tr><td>{e(plug.alias)}<small>{e(plug.id)} · {e(plug.kind)} · {place}</small></td>"
            f"<td class=\"w\">{_watts(plug.watts)}<small>{state} · {_age(age)}</small></td></tr>")
    sources = []
    for source in web.sources:
        age = None if source.last_update is None else max(0.0, now - source.last_update)
        status = ('<span class="up">connected</span>' if source.connected
                  else '<span class="down">not connected</span>')
        sources.append(f"<tr><td>{e(source.kind)}<small>{e(source.label or '')}</small></td>"
                       f"<td>{status}<small>last value {_age(age)}</small></td></tr>")
    if not sources:
        sources.append('<tr><td colspan="2">No connected sources (static and mutable plugs '
                       'only).</td></tr>')
    counters = web.service.responder.counters
    sense_requests = sum(counters.requests.values())
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>SenseLink</title>
<style>{_CSS}</style>
</head>
<body>
<h1>SenseLink</h1>
<p class="meta">{len(web.plugs)} plugs, {len(web.plugs.reported)} reported to Sense ·
{sense_requests} Kasa requests received · updated {e(time.strftime("%H:%M:%S"))}</p>
<p class="total">{_watts(reported_total)}</p>
<h2>Plugs</h2>
<table>
<thead><tr><th>Plug</th><th>Power</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
<h2>Sources</h2>
<table>
<thead><tr><th>Source</th><th>Status</th></tr></thead>
<tbody>
{chr(10).join(sources)}
</tbody>
</table>
<p class="meta">SenseLink {e(__version__)} · <a href="/api/plugs">JSON</a> ·
<a href="/metrics">metrics</a></p>
</body>
</html>
"""
    return page.encode("utf-8")


class StatusPage(_Base):
    isLeaf = True

    def render_GET(self, request):
        if request.postpath not in ([], [b""]):
            return error(request, 404, "not found")
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return status_page(self.web)


class Root(_Base):
    def getChild(self, name, request):
        if name == b"":
            return StatusPage(self.web)
        return NotFound()


class NotFound(Resource):
    isLeaf = True

    def render(self, request):
        return error(request, 404, "not found")


class Api(_Base):
    def getChild(self, name, request):
        return NotFound()


# ---------------------------------------------------------------- the service


class WebInterface:
    """The web interface of one L{senselink.service.SenseLinkService}."""

    def __init__(self, service, options: WebOptions):
        self.service = service
        self.options = options
        self.config = service.config
        self.plugs = service.plugs
        self.reactor = service.reactor
        self.token = options.token
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(SenseLinkCollector(self))
        root = Root(self)
        api = Api(self)
        api.putChild(b"plugs", PlugList(self))
        root.putChild(b"api", api)
        root.putChild(b"metrics", Metrics(self))
        self.root = root
        self.site = WebSite(root, requestFactory=LimitedRequest)
        self.site.displayTracebacks = False

    @property
    def sources(self):
        return self.service.sources

    def now(self):
        return self.reactor.seconds()

    def authorized(self, request) -> bool:
        if not self.token:
            return False
        header = request.getHeader(b"authorization") or b""
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(presented.strip(), self.token.encode("utf-8"))

    def model(self, plug_id):
        return PowerModel.from_options(self.config.plugs[plug_id].options)

    def initial_power(self, plug_id):
        return float(self.config.plugs[plug_id].get("power", 0.0))


class WebListener(Service):
    """Listens on the C{web: listen:} endpoint with the web interface's site."""

    def __init__(self, web: WebInterface, description: str, reactor):
        self.web = web
        self.description = description
        self.reactor = reactor
        self.listening = None
        self._pending = None

    def privilegedStartService(self):
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        if self.listening is None and self._pending is None:
            self._listen()

    def _listen(self):
        from senselink.service import StartupError
        endpoint = serverFromString(self.reactor, self.description)
        d = endpoint.listen(self.web.site)
        outcome = []
        d.addBoth(outcome.append)
        if outcome:
            if isinstance(outcome[0], Failure):
                reason = outcome[0].value
                reason = getattr(getattr(reason, "socketError", None), "strerror", None) \
                    or str(reason)
                raise StartupError(f"cannot listen for the web interface on "
                                   f"{self.description}: {reason}")
            self._listened(outcome[0])
        else:
            self._pending = d
            d.addCallbacks(self._listened, self._failed)

    def _listened(self, port):
        self._pending = None
        self.listening = port
        host = port.getHost()
        log.info("Web interface on http://{host}:{port}/ (API {api})",
                 host=getattr(host, "host", host), port=getattr(host, "port", ""),
                 api="read-write with token" if self.web.token else "read-only: no token set")

    def _failed(self, failure):
        self._pending = None
        log.critical("Cannot listen for the web interface on {where}: {reason}",
                     where=self.description, reason=failure.getErrorMessage())

    @property
    def port(self) -> int:
        return self.listening.getHost().port

    def stopService(self):
        super().stopService()
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        listening, self.listening = self.listening, None
        if listening is not None:
            return listening.stopListening()


def attach(service):
    """Add the web listener to C{service} when the config has a C{web} section; return it."""
    options = service.config.options.get("web")
    if options is None:
        return None
    web = WebInterface(service, options)
    listener = WebListener(web, options.listen, service.reactor)
    listener.setName("web")
    listener.setServiceParent(service)
    return listener
