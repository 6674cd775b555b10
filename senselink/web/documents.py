"""The JSON documents of the web interface, built from the live daemon.

Shared by the API (L{senselink.web.api}), the event stream
(L{senselink.web.events}) and the page's script: one plug
(L{plug_summary}), one source (L{source_summary}), the daemon's status with
"is Sense polling me?" (L{status_document}), a plug's history
(L{history_document}) and everything at once (L{snapshot}).

C{web} is the L{senselink.web.interface.WebInterface}; its C{daemon} is
read through the daemon's public API only.
"""

from senselink import __version__
from senselink.history import RECENT_SPACING

DAYS = 30                    # daily kWh in a plug's history
SPARK_POINTS = 120           # at most this many points per sparkline (10 minutes)

# Why a Sense monitor may not reach the daemon: (key, words); {port} is the UDP port
# answering Kasa requests. The status says which apply.
SETUP_CAUSES = (              # no Sense request since the start
    ("subnet", "SenseLink is not on the same subnet as the Sense monitor: Sense finds plugs "
               "by UDP broadcast, which routers do not forward."),
    ("docker", "Docker without host networking: broadcasts do not reach a container on a "
               "bridge network (use network_mode: host)."),
    ("firewall", "A firewall drops UDP port {port}, on this host or between it and the "
                 "monitor."),
)
QUIET_CAUSES = (              # Sense polled, then stopped
    ("monitor", "The Sense monitor is offline: no power, or its Wi-Fi lost (the Sense app "
                "shows it offline)."),
    ("network", "The network changed: a new router, access point, VLAN or Wi-Fi network put "
                "the monitor and SenseLink on different subnets."),
    ("address", "This host's IP address changed (a new DHCP lease, a restart of the router): "
                "give it a fixed address or a DHCP reservation."),
    ("firewall", "A firewall started dropping UDP port {port} (an update or a new rule), on "
                 "this host or between it and the monitor."),
)
SETTING_CAUSES = (            # either way: settings of this daemon
    ("allow_from", "allow_from does not include the monitor's address: its requests are "
                   "dropped."),
    ("quiet", "Quiet mode is on: requests are received but never answered."),
    ("target", "target is set: replies go to that host instead of the requester."),
)


def silence_causes(since_start, port):
    """C{[(key, words), ...]}: why Sense may not reach us, never having polled
    (C{since_start}) or having gone quiet; C{port}: the Kasa UDP port (None: not known)."""
    shown = "9999" if port is None else str(port)
    return [(key, text.replace("{port}", shown))
            for key, text in (SETUP_CAUSES if since_start else QUIET_CAUSES) + SETTING_CAUSES]


def kasa_port(daemon):
    """The UDP port the daemon answers Kasa requests on, or None before it listens."""
    try:
        return daemon.udp_port
    except AttributeError:           # no transport yet
        return None


def energy_figures(meter, plug, now):
    """C{[today, this month, total]} kWh of C{plug} in C{meter}, rounded; None when it
    has no counter."""
    counter = meter.get(plug.id)
    if counter is None:
        return None
    return [round(kwh, 6) for kwh in counter.figures(now)]


def plug_summary(plug, now, meter, delivery=None):
    """The JSON description of one plug, with its energy from C{meter} and, as C{sense},
    what Sense got of it from C{delivery} (a L{senselink.delivery.Delivery}; None for a
    plug Sense does not see)."""
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
        "mutable": plug.settable,
    }
    elements = getattr(plug, "elements", None)
    if elements is not None:
        out["elements"] = [element.id for element in elements]
    figures = energy_figures(meter, plug, now) or (0.0, 0.0, 0.0)
    out["energy"] = dict(zip(("today_kwh", "month_kwh", "total_kwh"), figures))
    out["sense"] = delivery.summary(plug.id, now) if delivery is not None else None
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
        "last_error": getattr(source, "last_error", None),
    }


def publisher_summary(publisher):
    """The JSON description of the MQTT publisher (the C{publish} section), or None."""
    if publisher is None:
        return None
    return {
        "kind": "publish",
        "label": publisher.label,
        "connected": bool(publisher.connected),
        "plugs": len(publisher.feeds),
        "waiting": len(publisher.outbox),
        "last_error": publisher.last_error,
    }


def requesters_summary(requesters, replies, now):
    """Requests of one kind of client (L{senselink.requesters.Requesters}) and replies sent."""
    last = requesters.last
    return {
        "requests": requesters.requests,
        "replies": replies,
        "last_request": last,
        "age": None if last is None else max(0.0, now - last),
        "addresses": [{"address": address, "last": seen} for address, seen in requesters.peers()],
        "polls_per_minute": round(requesters.per_minute(now), 1),
    }


def status_document(web, now):
    """The daemon at a glance: plugs, Sense and Kasa clients, sources, and silence."""
    daemon = web.daemon
    polling = daemon.polling
    counters = daemon.counters
    plugs = daemon.plugs
    silent = polling.sense_silent(now)
    out = {
        "version": __version__,
        "now": now,
        "started": polling.started,
        "quiet": daemon.quiet,
        "target": daemon.target,
        "writable": bool(web.token),
        "max_plug_watts": daemon.config.settings.max_plug_watts,
        "plugs": len(plugs),
        "reported": len(plugs.reported),
        "reported_watts": sum(plug.watts for plug in plugs.reported),
        "sense": requesters_summary(polling.sense, counters.replies.get("sense", 0), now),
        "kasa_clients": requesters_summary(polling.kasa, counters.replies.get("kasa", 0), now),
        "not_allowed": counters.ignored.get("not_allowed", 0),
        "silence": None,
        "sources": [source_summary(i, s, now) for i, s in enumerate(daemon.sources)],
        "publisher": publisher_summary(getattr(daemon, "publisher", None)),
    }
    if silent is not None:
        applies = {"allow_from": out["not_allowed"] > 0, "quiet": out["quiet"],
                   "target": out["target"] is not None}
        since_start = polling.sense.last is None
        out["silence"] = {
            "seconds": silent,
            "since_start": since_start,
            "causes": [{"cause": key, "text": text, "applies": applies.get(key)}
                       for key, text in silence_causes(since_start, kasa_port(daemon))],
        }
    return out


def spark(history, now):
    """At most L{SPARK_POINTS} C{[seconds before now, watts]} of the last 10 minutes."""
    if history is None:
        return []
    points = history.recent(now)
    bucket = 600.0 / SPARK_POINTS
    thinned = {}
    for t, watts in points:
        thinned[int((now - t) // bucket)] = (t, watts)   # the last point of each bucket
    if points:
        thinned[-1] = points[0]                          # the value at the window's start
    return [[round(t - now, 1), round(watts, 2)]
            for t, watts in sorted(thinned.values())]


def snapshot(web, now):
    """Everything the page shows: the status, and every plug with energy and sparkline."""
    daemon = web.daemon
    history = daemon.history
    plugs = []
    for plug in daemon.plugs:
        summary = plug_summary(plug, now, daemon.meter, daemon.delivery)
        summary["spark"] = spark(history.get(plug.id) if history is not None else None, now)
        plugs.append(summary)
    return {"now": now, "status": status_document(web, now), "plugs": plugs}


def history_document(web, plug, now, since=None):
    """One plug's history: 10 minutes of changes, 24 hours of minutes, 30 days of kWh.

    With C{since} (a C{now} of an earlier document), only what may have changed after it:
    the changes after it (and the point before, whose value a change may have replaced), the
    minutes from the one it fell in, yesterday and today.
    """
    daemon = web.daemon
    history = daemon.history.get(plug.id) if daemon.history is not None else None
    counter = daemon.meter.get(plug.id)
    out = {"id": plug.id, "alias": plug.alias, "now": now, "watts": plug.watts,
           "recent": [], "minutes": [], "days": []}
    # A change within a second of the point before it replaces that point's value.
    first = -1.0 if since is None else since - RECENT_SPACING
    if history is not None:
        out["recent"] = [[round(t, 1), round(w, 2)] for t, w in history.recent(now) if t > first]
        out["minutes"] = [[int(t), round(low, 2), round(mean, 2), round(high, 2)]
                          for t, low, mean, high in history.minutes(now) if t + 60 > first]
    if counter is not None:
        days = counter.daily(DAYS if since is None else 2, now)    # yesterday may still change
        out["days"] = [[day, round(kwh, 6)] for day, kwh in days]
    if since is not None:
        out["since"] = since
    return out
