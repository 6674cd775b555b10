"""The status page of the web interface: C{GET /} and its files under C{/static/}.

The page is a small HTML document; its script (C{static/status.js}, shipped
in the package, no outside resource) fills it from the event stream
(L{senselink.web.events}) and updates it live, draws the sparklines and
the charts as inline SVG (C{static/charts.js}), with the house overview
(C{static/overview.js}), and sets mutable plugs with the token kept
in the browser's session storage. Without scripts, a plain table of the
plugs is shown. It reads C{web}, the L{senselink.web.interface.WebInterface}.
"""

import html
from importlib import resources
from types import MappingProxyType

from senselink import __version__
from senselink.web.api import JsonResource, NotFound, error
from senselink.web.encoding import body, compressed, etag, not_modified

STATIC_TYPES = MappingProxyType({
    ".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
    ".svg": b"image/svg+xml", ".png": b"image/png"})

# Everything the page loads comes from the daemon itself.
CONTENT_SECURITY_POLICY = (b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           b"script-src 'self'; connect-src 'self'; base-uri 'none'; "
                           b"form-action 'self'; frame-ancestors 'none'")

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SenseLink</title>
<link rel="icon" href="static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="static/status.css">
<script src="static/charts.js" defer></script>
<script src="static/overview.js" defer></script>
<script src="static/stream.js" defer></script>
<script src="static/status.js" defer></script>
</head>
<body>
<header>
<h1>SenseLink</h1>
<p class="meta"><span id="live" class="pending" role="status">connecting…</span>
<span id="outage"></span>
<span id="summary">{n} plugs, {reported} reported to Sense</span></p>
</header>
<main>
<div aria-live="polite">
<div id="banner" class="banner" hidden>
<strong id="banner-title">No Sense request yet</strong>
<p>The usual causes:</p>
<ul id="banner-causes"></ul>
</div>
</div>
<section class="house" id="house" aria-labelledby="house-title">
<h2 id="house-title">Reported to Sense now</h2>
<p id="total" class="big">{total}</p>
<div id="house-charts" class="house-charts"></div>
</section>
<section class="cards" id="overview" aria-label="Sense and Kasa clients">
<div class="card" id="sense"><h2>Sense monitor</h2><dl></dl></div>
<div class="card" id="kasa"><h2>Kasa clients</h2><dl></dl>
<p class="idle-line" hidden>No Kasa client (the Kasa app, Home Assistant) has asked yet.</p></div>
</section>
<form id="unlock" class="unlock" hidden>
<label for="token">Token to change mutable plugs</label>
<input id="token" type="password" autocomplete="current-password" required>
<button type="submit">Unlock</button>
</form>
<p id="unlock-note" class="error" role="alert"></p>
<p id="locked" class="unlock" hidden>Mutable plugs can be changed from this tab.
<button type="button" id="lock">Lock</button></p>
<h2>Plugs</h2>
<div class="plug-tools">
<span id="sort-label">Order:</span>
<span role="group" aria-labelledby="sort-label">
<button type="button" id="sort-watts" aria-pressed="true">by watts, largest first</button>
<button type="button" id="sort-config" aria-pressed="false">as in the config</button>
</span>
<button type="button" id="shared-scale" aria-pressed="true">sparklines on one scale</button>
<span class="scale-top note"></span>
</div>
<section id="plugs" class="plugs" aria-label="Plugs">
<noscript><table>
{rows}
</table></noscript>
</section>
<h2>Sources</h2>
<ul id="sources" class="sources"></ul>
</main>
<dialog id="detail" class="detail" aria-labelledby="detail-title">
<div class="top"><h2 id="detail-title"></h2>
<button type="button" id="detail-close">Close</button></div>
<div id="detail-body"></div>
</dialog>
<footer class="meta">SenseLink {version} · <a href="api/plugs">plugs (JSON)</a> ·
<a href="api/status">status (JSON)</a> · <a href="metrics">metrics</a></footer>
</body>
</html>
"""


def status_page(web) -> bytes:
    """The page, UTF-8 encoded; its script fills in the rest."""
    e = html.escape
    plugs = web.plugs
    rows = "\n".join(f"<tr><td>{e(plug.alias)}</td><td>{plug.watts:,.1f} W</td></tr>"
                     for plug in plugs)
    total = sum(plug.watts for plug in plugs.reported)
    return _PAGE.format(n=len(plugs), reported=len(plugs.reported), total=f"{total:,.1f} W",
                        rows=rows, version=e(__version__)).encode("utf-8")


class StatusPage(JsonResource):
    """C{/}: the status page (a JSON 404 below it)."""

    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"Content-Security-Policy", CONTENT_SECURITY_POLICY)
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        page = status_page(self.web)
        if not_modified(request, etag(page)):
            return b""
        return body(request, page)


def static_files():
    """C{{name: (content type, bytes)}} of the files shipped in C{senselink/web/static}.

    Read once; L{Static} keeps each with its gzip and its ETag.
    """
    files = {}
    for entry in resources.files("senselink.web").joinpath("static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in STATIC_TYPES:
            files[entry.name.encode("utf-8")] = (STATIC_TYPES[suffix], entry.read_bytes())
    return files


class Static(JsonResource):
    """C{/static/<name>}: the page's script, style and icon, read once from the package."""

    def __init__(self):
        super().__init__()
        self.files = {name: StaticFile(*entry) for name, entry in static_files().items()}

    def getChild(self, name, request):
        if name in self.files:
            return self.files[name]
        return NotFound()

    def render_GET(self, request):
        return error(request, 404, "not found")


class StaticFile(JsonResource):
    """One file: revalidated at each use (C{no-cache}; a reload gets a 304 while it is
    unchanged), gzipped for clients that take it."""

    isLeaf = True

    def __init__(self, content_type, data):
        super().__init__()
        self.content_type = content_type
        self.data = data
        self.gzipped = compressed(data)
        self.etag = etag(data)

    def render_GET(self, request):
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if not_modified(request, self.etag):
            return b""
        return body(request, self.data, self.gzipped)
