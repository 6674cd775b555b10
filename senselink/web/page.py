"""The HTML status page of the web interface: C{GET /}.

One self-contained page (inline CSS, no scripts, no external assets) that
reloads itself every L{REFRESH_SECONDS}. Its links are relative, so it works
under a path prefix (Home Assistant's ingress, a reverse proxy). It reads C{web}, the
L{senselink.web.interface.WebInterface}: its C{plugs}, C{sources},
C{counters} and C{now()}.
"""

import html
import time

from twisted.web.resource import Resource

from senselink import __version__
from senselink.web.api import error

REFRESH_SECONDS = 10          # the status page reloads itself this often

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
    """The page, UTF-8 encoded, from the live values of C{web}."""
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
    counters = web.counters
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
<p class="meta">SenseLink {e(__version__)} · <a href="api/plugs">JSON</a> ·
<a href="metrics">metrics</a></p>
</body>
</html>
"""
    return page.encode("utf-8")


class StatusPage(Resource):
    """C{/}: the status page (a JSON 404 below it)."""

    isLeaf = True

    def __init__(self, web):
        super().__init__()
        self.web = web

    def render_GET(self, request):
        if request.postpath not in ([], [b""]):
            return error(request, 404, "not found")
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        return status_page(self.web)
