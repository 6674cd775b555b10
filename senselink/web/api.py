"""The JSON API of the web interface: C{/api/plugs}, C{/api/plugs/<id>} and PUT.

Also the JSON answers every part of the interface uses for errors
(L{send_json}, L{error}, L{NotFound}) and the request class that bounds
request bodies (L{LimitedRequest}).

The resources read and change the daemon through C{web}, the
L{senselink.web.interface.WebInterface}: its C{plugs}, C{now()}, C{token},
C{authorized(request)} and C{daemon.set_power} / C{daemon.switch}.
"""

import json
import math

from twisted.web.resource import Resource
from twisted.web.server import Request

from senselink.excerpt import excerpt

MAX_BODY = 64 * 1024          # bytes; larger request bodies are refused with 413


# ---------------------------------------------------------------- JSON answers


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


class NotFound(Resource):
    isLeaf = True

    def render(self, request):
        return error(request, 404, "not found")


# ---------------------------------------------------------------- summaries


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
    """The JSON description of one source."""
    last = source.last_update
    return {
        "index": index,
        "kind": source.kind,
        "label": source.label,
        "connected": bool(source.connected),
        "last_update": last,
        "age": None if last is None else max(0.0, now - last),
    }


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


# ---------------------------------------------------------------- resources


class Api(Resource):
    """C{/api}: C{plugs} below it, nothing else."""

    def __init__(self, web):
        super().__init__()
        self.web = web
        self.putChild(b"plugs", PlugList(web))

    def getChild(self, name, request):
        return NotFound()


class PlugList(Resource):
    """C{/api/plugs}: every plug; C{/api/plugs/<id>}: one plug."""

    def __init__(self, web):
        super().__init__()
        self.web = web

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


class PlugResource(Resource):
    """C{/api/plugs/<id>}: GET one plug; PUT (with the token) a mutable plug's power or state."""

    isLeaf = True

    def __init__(self, web, plug_id):
        super().__init__()
        self.web = web
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
            watts, on = self._read_change(request)
            try:
                if watts is None:
                    self.web.daemon.switch(plug.id, on)
                else:
                    self.web.daemon.set_power(plug.id, watts, on)
            except (TypeError, ValueError) as e:
                raise ApiError(400, str(e)) from None
        except ApiError as e:
            return error(request, e.code, e.message)
        return send_json(request, 200, plug_summary(plug, self.web.now()))

    def _read_change(self, request):
        """C{(watts, on)} from the body; watts None for a state alone."""
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
            raise ApiError(400, f"unknown key {excerpt(unknown[0])}; use power and/or state")
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
        return None, on
