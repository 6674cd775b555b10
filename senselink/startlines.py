"""What the daemon says once it has started: where it listens, its plugs, what it restored.

L{log_start} reads the started L{senselink.daemon.Daemon} through its
public API; names are clipped (L{senselink.excerpt.shown_name}).
"""

from datetime import datetime, timezone

from senselink.excerpt import shown_name
from senselink.log import Logger

log = Logger()


def moment(seconds) -> str:
    """A time of the state file, for people: C{2026-11-26 08:00:00 UTC}."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def log_start(daemon, restored=(), refused=(), identities=()):
    """The start lines. C{restored}: C{(id, watts, set time)} of each value set at run time
    that a plug took back; C{refused}: C{(id, words)} of those it could not; C{identities}:
    the words of each plug Sense would see as a new device by accident."""
    if daemon.kasa.listening:
        host = daemon.kasa.host
        for what, port in (("UDP", daemon.udp_port), ("TCP", daemon.tcp_port)):
            log.info("Answering Kasa requests on {what} {interface}:{port}", what=what,
                     interface=host, port=port)
    for warning in daemon.config.warnings:
        log.warn("{problem}", problem=warning)
    plugs = daemon.plugs
    reported = plugs.reported
    log.info("SenseLink started from {path}: {n} {plugs}, {r} reported to Sense{quiet}",
             path=daemon.config.path, n=len(plugs),
             plugs="plug" if len(plugs) == 1 else "plugs", r=len(reported),
             quiet="" if not daemon.quiet else " (quiet mode: not answering)")
    strip = daemon.strip
    if strip is not None:
        log.info("Kasa clients see a power strip {alias} ({mac}) with {n} {sockets}",
                 alias=shown_name(strip.alias), mac=strip.mac, n=len(reported),
                 sockets="socket" if len(reported) == 1 else "sockets")
    else:
        log.info("kasa_clients is false: only the Sense request is answered")
    kept = {plug_id: when for plug_id, _, when in restored}
    for plug in plugs:
        where = ("reported" if plug.reported
                 else f"in aggregate {shown_name(plug.aggregate.id)}")
        when = kept.get(plug.id)
        log.info("Plug {plug} ({alias}, {mac}, {kind}): {watts} W{restored}, {where}",
                 plug=shown_name(plug.id), alias=shown_name(plug.alias), mac=plug.mac,
                 kind=plug.kind, watts=plug.watts, where=where,
                 restored="" if when is None else
                 f" (restored: set at run time on {moment(when)})")
    for plug_id, words in refused:
        log.warn("Plug {plug} starts from its power: its value set at run time, {words}, "
                 "is not restored", plug=shown_name(plug_id), words=words)
    for words in identities:
        log.warn("{problem}", problem=words)
