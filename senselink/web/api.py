"""The JSON API of the web interface: C{/api/plugs}, C{/api/plugs/<id>}, its history (and
as CSV), PUT, and C{/api/status}.

Also the JSON answers every part of the interface uses: errors
(L{send_json}, L{error}, L{NotFound}), a JSON 405 with C{Allow} for methods a
resource does not have (L{JsonResource}), and the request class that bounds
request bodies (L{LimitedRequest}).

The resources read and change the daemon through C{web}, the
L{senselink.web.interface.WebInterface}: its C{daemon} (public API only),
C{plugs}, C{now()}, C{token} and C{authorized(request)}. The documents
come from L{senselink.web.documents}.
"""

import json
import math
from urllib.parse import quote

from twisted.web.resource import Resource
from twisted.web.server import Request

from senselink.jsondepth import too_deep
from senselink.web import exports
from senselink.web.encoding import body
from senselink.web.documents import history_document, plug_summary, snapshot, status_document

# The body the API takes (a PUT of a plug): a JSON object like EXAMPLE, bounded.
MAX_BODY = 64 * 1024          # bytes; larger request bodies are refused with 413
MAX_DEPTH = 8                 # nesting levels; a deeper body is a 400 before it is parsed
EXAMPLE = 'expected a JSON object like {"power": 42.5} or {"state": "on"}'


# ---------------------------------------------------------------- JSON answers


def json_bytes(document) -> bytes:
    """C{document} as the interface writes JSON."""
    return json.dumps(document, indent=1).encode("utf-8") + b"\n"


def send_json(request, code, document):
    """C{document} as the answer, gzipped when it is large and the client takes gzip."""
    request.setResponseCode(code)
    request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
    request.setHeader(b"Cache-Control", b"no-store")
    return body(request, json_bytes(document))


def error(request, code, message, **extra):
    return send_json(request, code, {"error": message, **extra})


def error_bytes(message) -> bytes:
    """The body of a JSON error, for an answer written without a request."""
    return json_bytes({"error": message})


def too_large_message(limit=MAX_BODY) -> str:
    return f"request body larger than {limit} bytes"


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def since_argument(request):
    """The request's C{?since=<seconds>} (an earlier answer's C{now}), or None when it has
    none; ValueError when it is not a finite number (read from its first 40 bytes)."""
    raw = request.args.get(b"since")
    if not raw:
        return None
    since = float(raw[0][:40])
    if not math.isfinite(since):
        raise ValueError("since is not finite")
    return since


class JsonResource(Resource):
    """A resource of the web interface C{web}; it answers a method it lacks with a JSON
    405 naming the allowed ones, and, as a leaf, a path that goes on below it with a
    JSON 404."""

    def __init__(self, web=None):
        super().__init__()
        self.web = web

    def allowed_methods(self):
        names = {name[7:] for name in dir(self) if name.startswith("render_")
                 and name[7:].isupper()}
        if "GET" in names:
            names.add("HEAD")
        return sorted(names)

    def render(self, request):
        if self.isLeaf and request.postpath not in ([], [b""]):
            return error(request, 404, "not found")
        method = request.method.decode("ascii", "replace")
        handler = getattr(self, "render_" + method, None) if method.isupper() else None
        if handler is None and method == "HEAD":
            handler = getattr(self, "render_GET", None)
        if handler is None:
            allowed = self.allowed_methods()
            request.setHeader(b"Allow", ", ".join(allowed).encode("ascii"))
            return error(request, 405, f"method {method[:40]} is not allowed here; allowed: "
                                       f"{', '.join(allowed)}")
        return handler(request)


class NotFound(Resource):
    isLeaf = True

    def render(self, request):
        return error(request, 404, "not found")


def shown_id(name: bytes) -> str:
    """A path segment as people wrote it: text, or %XX for bytes that are not UTF-8."""
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return quote(name, safe="")


# ---------------------------------------------------------------- requests


class LimitedRequest(Request):
    """A request whose body may hold L{MAX_BODY} bytes; past that, it is dropped and refused.

    Its channel (L{senselink.web.connections.BoundedChannel}) answers the 413
    and closes as soon as the head announces a larger body, or the chunks
    of one grow past it; under a plain channel the PUT answers it.
    """

    max_body = MAX_BODY
    body_too_large = False
    _body_size = 0

    def refuse_too_large(self):
        """The channel refused the body from its announced length alone."""
        self.body_too_large = True

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
            refuse = getattr(self.channel, "refuse_body", None)
            if refuse is not None:
                refuse(self.max_body)
            return
        super().handleContentChunk(data)


# ---------------------------------------------------------------- resources


class Api(JsonResource):
    """C{/api}: C{plugs}, C{status}, C{snapshot}, C{token} and C{events} below it, nothing
    else."""

    def __init__(self, web):
        super().__init__(web)
        self.putChild(b"plugs", PlugList(web))
        self.putChild(b"status", Status(web))
        self.putChild(b"snapshot", Snapshot(web))
        self.putChild(b"token", TokenCheck(web))

    def getChild(self, name, request):
        return NotFound()


class Status(JsonResource):
    """C{/api/status}: the daemon at a glance, with "is Sense polling me?"."""

    isLeaf = True

    def render_GET(self, request):
        return send_json(request, 200, status_document(self.web, self.web.now()))


class Snapshot(JsonResource):
    """C{/api/snapshot}: everything the page shows, as the event stream's first event has it
    (a tab that shares another tab's stream starts from it)."""

    isLeaf = True

    def render_GET(self, request):
        return send_json(request, 200, snapshot(self.web, self.web.now()))


class TokenCheck(JsonResource):
    """C{/api/token}: 200 when the request carries the token, else the PUT's 401 or 403
    (the page's Unlock checks a token at once with it)."""

    isLeaf = True

    def render_GET(self, request):
        try:
            check_write(self.web, request)
        except ApiError as e:
            return error(request, e.code, e.message)
        return send_json(request, 200, {"ok": True})


class PlugList(JsonResource):
    """C{/api/plugs}: every plug; C{/api/plugs/<id>}: one plug."""

    def getChild(self, name, request):
        if name == b"":
            return self
        plug = self.web.plugs.get(shown_id(name))
        if plug is None:
            return UnknownPlug(self.web, shown_id(name))
        return PlugResource(self.web, plug)

    def render_GET(self, request):
        now = self.web.now()
        daemon = self.web.daemon
        return send_json(request, 200, {"plugs": [plug_summary(p, now, daemon.meter,
                                                               daemon.delivery)
                                                  for p in self.web.plugs]})


def check_write(web, request):
    """Raise L{ApiError} unless C{request} may change plugs (a token is set and presented)."""
    if not web.token:
        raise ApiError(403, "no token is configured (web: token:): the API is read-only")
    if not web.authorized(request):
        request.setHeader(b"WWW-Authenticate", b'Bearer realm="senselink"')
        raise ApiError(401, "a valid 'Authorization: Bearer <token>' header is required")


class UnknownPlug(Resource):
    """Anything under C{/api/plugs/<id>} for an id no plug has: a JSON 404 naming the id.

    A PUT needs the token first: plug ids are not revealed to writers without it.
    """

    isLeaf = True

    def __init__(self, web, plug_id):
        super().__init__()
        self.web = web
        self.plug_id = plug_id

    def render(self, request):
        if request.method == b"PUT":
            try:
                check_write(self.web, request)
            except ApiError as e:
                return error(request, e.code, e.message)
        return error(request, 404, f"no plug with id {self.plug_id[:100]!r}",
                     id=self.plug_id[:100])


class PlugResource(JsonResource):
    """C{/api/plugs/<id>}: GET one plug; PUT (with the token) a mutable plug's power or state."""

    def __init__(self, web, plug):
        super().__init__(web)
        self.plug = plug

    def getChild(self, name, request):
        if name == b"":
            return self
        if name == b"history":
            return PlugHistory(self.web, self.plug)
        if name in (b"history.csv", b"days.csv"):
            return PlugCsv(self.web, self.plug, name[:-4].decode("ascii"))
        return NotFound()

    def render_GET(self, request):
        daemon = self.web.daemon
        return send_json(request, 200, plug_summary(self.plug, self.web.now(), daemon.meter,
                                                    daemon.delivery))

    def render_PUT(self, request):
        plug = self.plug
        try:
            check_write(self.web, request)
            if getattr(request, "body_too_large", False):
                request.setHeader(b"Connection", b"close")
                raise ApiError(413, too_large_message(MAX_BODY))
            if not plug.settable:
                raise ApiError(409, f"plug {plug.id!r} is a {plug.kind} plug; only mutable "
                                    f"plugs can be changed")
            watts, on = read_change(request)
            try:
                if watts is None:
                    self.web.daemon.switch(plug.id, on)
                else:
                    self.web.daemon.set_power(plug.id, watts, on)
            except (TypeError, ValueError) as e:
                raise ApiError(400, str(e)) from None
        except ApiError as e:
            return error(request, e.code, e.message)
        daemon = self.web.daemon
        return send_json(request, 200, plug_summary(plug, self.web.now(), daemon.meter,
                                                    daemon.delivery))


class PlugHistory(JsonResource):
    """C{/api/plugs/<id>/history}: 10 minutes of changes, 24 h of minutes, 30 days of kWh;
    C{?since=<seconds>}: only what is newer (the detail view's updates)."""

    isLeaf = True

    def __init__(self, web, plug):
        super().__init__(web)
        self.plug = plug

    def render_GET(self, request):
        try:
            since = since_argument(request)
        except ValueError:
            return error(request, 400, "since must be a time in seconds (the history's now)")
        return send_json(request, 200, history_document(self.web, self.plug, self.web.now(),
                                                        since))


class PlugCsv(JsonResource):
    """C{/api/plugs/<id>/history.csv} (24 hours per minute), C{/api/plugs/<id>/days.csv}
    (kWh per day): downloads for spreadsheets (L{senselink.web.exports})."""

    isLeaf = True

    def __init__(self, web, plug, what):
        super().__init__(web)
        self.plug = plug
        self.what = what

    def render_GET(self, request):
        daemon, now = self.web.daemon, self.web.now()
        if self.what == "history":
            history = daemon.history.get(self.plug.id) if daemon.history is not None else None
            text = exports.history_csv(history, now)
        else:
            text = exports.days_csv(daemon.meter.get(self.plug.id), now)
        request.setHeader(b"Content-Type", b"text/csv; charset=utf-8; header=present")
        request.setHeader(b"Content-Disposition", b'attachment; filename="' +
                          exports.filename(self.plug.id, self.what) + b'"')
        request.setHeader(b"Cache-Control", b"no-store")
        return body(request, text)


def read_change(request):
    """C{(watts, on)} from a PUT body; watts None for a state alone."""
    request.content.seek(0)
    raw = request.content.read(MAX_BODY + 1)
    try:
        text = raw.decode("utf-8")
        if too_deep(text, MAX_DEPTH):
            raise ApiError(400, f"{EXAMPLE}; this body nests deeper than {MAX_DEPTH} levels")
        body = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, EXAMPLE) from None
    if not isinstance(body, dict) or not body:
        raise ApiError(400, EXAMPLE)
    unknown = sorted(str(k) for k in body if k not in ("power", "state"))
    if unknown:
        raise ApiError(400, f"unknown key {unknown[0][:100]!r}; use power and/or state")
    on = None
    if "state" in body:
        state = body["state"]
        if state not in ("on", "off"):
            raise ApiError(400, 'state must be "on" or "off"')
        on = state == "on"
    if "power" not in body:
        return None, on
    watts = body["power"]
    try:
        if isinstance(watts, bool) or not isinstance(watts, (int, float)):
            raise ValueError
        watts = float(watts)   # OverflowError for integers too large for a float
    except (ValueError, OverflowError):
        watts = math.nan
    if not math.isfinite(watts) or watts < 0:
        raise ApiError(400, "power must be a finite number >= 0 (watts)")
    if on is False and watts > 0:
        raise ApiError(400, f'"state": "off" contradicts "power": {watts:g}: a plug that is off '
                            f'draws no power here. Send {{"state": "off"}} alone (the plug '
                            f'then draws its off_usage), or a power with "state": "on"')
    return watts, on
