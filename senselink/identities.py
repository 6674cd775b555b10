"""Identities Sense knows: every MAC this installation answered Sense with, kept for good.

Sense knows a plug by its MAC: a plug reported under a new MAC becomes a
new device in the Sense app, and the old one stays there. L{Identities}
records, per MAC, the plug id, alias and position (among the reported
plugs, in config order) it was reported with and the first and last time
Sense was answered with it (from L{senselink.delivery.Delivery}); the
state file keeps them (section C{identities}, each entry checked on its
own). L{ghost_warnings} compares a config's reported plugs with them: a
plug whose MAC changed, or a new plug id whose alias or position matches a
plug that vanished, gets one warning naming both MACs.
"""

import re
from collections import namedtuple
from datetime import datetime, timezone

from senselink.config.scalars import MAX_NAME
from senselink.energy.statefile import state_time
from senselink.excerpt import excerpt, shown_name

SECTION = "identities"       # the state file's key of this section
MAX_IDENTITIES = 1000        # MACs kept; past it the longest unanswered are forgotten
MAX_POSITION = 100_000       # a plug's position among the reported plugs
MAX_LINES = 20               # unusable entries named one by one; the rest are counted
MAC = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){5}\Z")

Identity = namedtuple("Identity", "mac plug alias position first last")
Reported = namedtuple("Reported", "id alias mac position")


def moment(seconds) -> str:
    """A time of the state file, for people: C{2026-11-26 08:00 UTC}."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _name(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME


def check_identity(mac, entry) -> str:
    """What is wrong with one saved identity, or an empty string."""
    if not isinstance(mac, str) or not MAC.match(mac):
        return "not a MAC address in upper case"
    if not isinstance(entry, dict):
        return "not a mapping"
    for key in ("plug", "alias"):
        if not _name(entry.get(key)):
            return f"{key} is not a name of 1 to {MAX_NAME} characters"
    position = entry.get("position")
    if isinstance(position, bool) or not isinstance(position, int) \
            or not 0 <= position <= MAX_POSITION:
        return f"position is not a whole number from 0 to {MAX_POSITION}"
    if not state_time(entry.get("first")) or not state_time(entry.get("last")):
        return "first or last is not a time in the years 2000 to 2100"
    if entry["first"] > entry["last"]:
        return "first is after last"
    return ""


def reported_plugs(plugs):
    """L{Reported} of each plug of a L{senselink.plugs.PlugSet} Sense sees, in order."""
    return [Reported(plug.id, plug.alias, plug.mac, n) for n, plug in enumerate(plugs.reported)]


class Identities:
    """The MACs Sense was answered with, by MAC; fed from C{delivery} for the plugs watched."""

    name = SECTION

    def __init__(self, delivery=None):
        self.delivery = delivery
        self.known = {}          # MAC -> Identity
        self.plugs = None        # the PlugSet watched

    def watch(self, plugs):
        """Record what Sense got of the plugs watched so far, then watch C{plugs}."""
        self.note()
        self.plugs = plugs

    def note(self):
        """Record the plugs watched that Sense was answered with (call before their
        delivery records go)."""
        if self.plugs is None or self.delivery is None:
            return
        known = self.known
        for plug in reported_plugs(self.plugs):
            record = self.delivery.get(plug.id)
            if (record is None or record.mac != plug.mac or not state_time(record.last)
                    or not state_time(record.first)):
                continue
            old = known.get(plug.mac)
            first = record.first if old is None else min(old.first, record.first)
            known[plug.mac] = Identity(plug.mac, plug.id, plug.alias, plug.position, first,
                                       record.last if old is None else max(old.last, record.last))
        if len(known) > MAX_IDENTITIES:
            for identity in sorted(known.values(), key=lambda i: i.last)[:-MAX_IDENTITIES]:
                del known[identity.mac]

    def check(self, reported):
        """The warnings of L{ghost_warnings} for C{reported} (L{Reported}), with what Sense
        got until now."""
        self.note()
        return ghost_warnings(self.known, reported)

    # -- the state file's section --

    def snapshot(self) -> dict:
        self.note()
        return {i.mac: {"plug": i.plug, "alias": i.alias, "position": i.position,
                        "first": i.first, "last": i.last} for i in self.known.values()}

    def restore(self, section):
        """Read the state file's section (None: absent); the words of each unusable entry."""
        if section is None:
            return []
        if not isinstance(section, dict):
            return [f"Identities in the state file are unusable (section {SECTION!r} is not a "
                    f"mapping); the MACs Sense knows are not checked"]
        bad, skipped = [], 0
        for index, (mac, entry) in enumerate(section.items()):
            problem = ("too many entries" if index >= MAX_IDENTITIES
                       else check_identity(mac, entry))
            if problem:
                if len(bad) < MAX_LINES:
                    bad.append(f"Identity {excerpt(mac)} in the state file is unusable "
                               f"({problem}); forgotten")
                else:
                    skipped += 1
                continue
            old = self.known.get(mac)
            if old is None or old.last < entry["last"]:
                self.known[mac] = Identity(mac, entry["plug"], entry["alias"], entry["position"],
                                           float(entry["first"]), float(entry["last"]))
        if skipped:
            bad.append(f"{skipped} more identities in the state file are unusable")
        return bad


def ghost_warnings(known, reported):
    """One warning per plug of C{reported} (L{Reported}, in order) that Sense would see as a
    new device by accident: its MAC changed, or its id is new and its alias (else its
    position) matches a plug Sense knew that is gone. C{known}: MAC -> L{Identity}."""
    latest = {}              # plug id -> its identity answered last
    for identity in known.values():
        seen = latest.get(identity.plug)
        if seen is None or seen.last < identity.last:
            latest[identity.plug] = identity
    ids = {plug.id for plug in reported}
    macs = {plug.mac for plug in reported}
    vanished = sorted((i for plug_id, i in latest.items()
                       if plug_id not in ids and i.mac not in macs),
                      key=lambda i: i.last, reverse=True)
    warnings = []
    for plug in reported:
        if plug.mac in known:
            continue             # Sense knows this MAC: nothing new
        old = latest.get(plug.id)
        if old is not None:
            if old.mac in macs:
                continue         # its old MAC is reported by another plug now
            why = f"Plug {excerpt(plug.id)} was reported to Sense with MAC {old.mac}"
        else:
            old = (next((i for i in vanished if i.alias == plug.alias), None)
                   or next((i for i in vanished if i.position == plug.position), None))
            if old is None:
                continue
            vanished.remove(old)
            match = "alias" if old.alias == plug.alias else "position"
            why = (f"Plug {excerpt(plug.id)} is new, and its {match} matches plug "
                   f"{excerpt(old.plug)}, gone, which was reported to Sense with MAC {old.mac}")
        warnings.append(
            f"{why} (last answered {moment(old.last)}) and is now reported with MAC {plug.mac}: "
            f"Sense will show a new device {excerpt(plug.alias)}; the old one stays in the "
            f"Sense app. To keep the old identity, set mac: {old.mac} on plug "
            f"{excerpt(plug.id)}")
    return warnings


def identity_table(known, reported=()) -> str:
    """Every MAC Sense was answered with, answered last first: its plug, alias, first and
    last time answered, and the plug reporting it now (C{reported}: L{Reported})."""
    now = {plug.mac: plug.id for plug in reported}
    rows = [("MAC", "PLUG", "ALIAS", "FIRST ANSWERED", "LAST ANSWERED", "REPORTED NOW BY")]
    for i in sorted(known.values(), key=lambda i: i.last, reverse=True):
        rows.append((i.mac, shown_name(i.plug), shown_name(i.alias), moment(i.first),
                     moment(i.last), shown_name(now[i.mac]) if i.mac in now else "-"))
    widths = [max(len(row[n]) for row in rows) for n in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)
