"""The house at a glance over time: the total watts reported to Sense, summed over the
reported plugs' histories (L{senselink.history}).

C{GET /api/house}: C{recent} (C{[time, watts]} of the last 10 minutes, a point at each
change of any reported plug, the first at the window's start), C{minutes}
(C{[minute start, mean watts]} of the last 24 hours, the minute in progress last) and
C{since} (when the history begins: the first minute held). C{?since=T} (the C{now} of an
earlier answer) gives only the minutes from the one C{T} fell in, and no C{recent}: the
page extends it from the event stream.
"""

from senselink.web.api import JsonResource, error, send_json, since_argument


def total_recent(histories, now):
    """C{[(time, total watts), ...]}: the step functions of C{histories} added up."""
    series = [h.recent(now) for h in histories]
    series = [s for s in series if s]
    times = sorted({t for s in series for t, _ in s})
    index = [0] * len(series)
    out = []
    for t in times:
        total = 0.0
        for i, points in enumerate(series):
            j = index[i]
            while j + 1 < len(points) and points[j + 1][0] <= t:
                j += 1
            index[i] = j
            if points[j][0] <= t:
                total += points[j][1]
        out.append((t, total))
    return out


def total_minutes(histories, now):
    """C{[(minute start, total mean watts), ...]}: the minutes' means added up."""
    totals = {}
    for history in histories:
        for t, _low, mean, _high in history.minutes(now):
            totals[t] = totals.get(t, 0.0) + mean
    return sorted(totals.items())


def house_document(web, now, since=None):
    """The total reported to Sense over the last 10 minutes and 24 hours."""
    daemon = web.daemon
    out = {"now": now, "watts": sum(p.watts for p in daemon.plugs.reported),
           "recent": [], "minutes": [], "since": None}
    if daemon.history is None:
        return out
    histories = [h for h in (daemon.history.get(p.id) for p in daemon.plugs.reported)
                 if h is not None]
    minutes = total_minutes(histories, now)
    if minutes:
        out["since"] = minutes[0][0]
    if since is None:
        out["recent"] = [[round(t, 1), round(w, 2)] for t, w in total_recent(histories, now)]
    else:
        minutes = [m for m in minutes if m[0] + 60 > since]
    out["minutes"] = [[int(t), round(w, 2)] for t, w in minutes]
    return out


class House(JsonResource):
    """C{/api/house}: the house total over time (see the module's description)."""

    isLeaf = True

    def render_GET(self, request):
        try:
            since = since_argument(request)
        except ValueError:
            return error(request, 400, "since must be a time in seconds (an answer's now)")
        return send_json(request, 200, house_document(self.web, self.web.now(), since))
