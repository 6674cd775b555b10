"""Per-plug delivery as Sense sees it: which of the last Sense polls carried each plug.

The responder tells L{Delivery.poll} of every Sense poll it classified,
with the plugs whose replies it sent (C{skip_rate} leaves some out, the
guard's reply cap, quiet mode or an unresolved target drop them all). That
is on the hot path, so the work is proportional to the plugs answered:
each plug's record is a L{WINDOW}-bit ring of the polls that carried it,
shifted only when the plug is answered (and, when read, by the polls since).
Sense shows a plug as N/A after about L{NA_POLLS} polls without it.
"""

WINDOW = 60                  # Sense polls remembered per plug
NA_POLLS = 5                 # polls without a plug after which Sense shows it as N/A
MASK = (1 << WINDOW) - 1


class PlugDelivery:
    """One plug's record: bit i of C{ring} is set when poll C{at - i} carried it."""

    __slots__ = ("mac", "ring", "at", "born", "first", "last")

    def __init__(self, mac, polls):
        self.mac = mac           # the plug's MAC: a plug under a new MAC starts anew
        self.ring = 0
        self.at = polls          # the poll that last carried it (the record's start before)
        self.born = polls        # polls counted before the record began
        self.first = None        # clock time Sense was first answered with it, or None
        self.last = None         # clock time Sense was last answered with it, or None

    def carried(self, polls) -> int:
        """How many of the last L{window} polls carried the plug."""
        behind = polls - self.at
        if behind >= WINDOW:
            return 0
        return ((self.ring << behind) & MASK).bit_count()

    def window(self, polls) -> int:
        """The polls L{carried} counts from: L{WINDOW}, or fewer since the record began."""
        return min(WINDOW, polls - self.born)

    def missed(self, polls) -> int:
        """Polls in a row without the plug, up to now."""
        return polls - self.at


class Delivery:
    """The Sense polls counted, and a L{PlugDelivery} per reported plug id."""

    def __init__(self, clock):
        self.clock = clock
        self.polls = 0
        self.records = {}        # plug id -> PlugDelivery

    def watch(self, plugs):
        """Keep records for the reported plugs of C{plugs} (a L{senselink.plugs.PlugSet}):
        records of plugs no longer reported go, new plugs (and plugs under a new MAC)
        start with none carried."""
        records = self.records
        wanted = {plug.id: plug.mac for plug in plugs.reported}
        for plug_id in [i for i in records if i not in wanted]:
            del records[plug_id]
        for plug_id, mac in wanted.items():
            record = records.get(plug_id)
            if record is None or record.mac != mac:
                records[plug_id] = PlugDelivery(mac, self.polls)

    def poll(self, answered, sent):
        """A Sense poll: the first C{sent} plugs of C{answered} were sent to Sense."""
        polls = self.polls = self.polls + 1
        if not sent:
            return
        now = self.clock.seconds()
        records = self.records
        for plug in answered:
            record = records.get(plug.id)
            if record is None:
                record = records[plug.id] = PlugDelivery(plug.mac, polls - 1)
            behind = polls - record.at
            record.ring = ((record.ring << behind) | 1) & MASK if behind < WINDOW else 1
            record.at = polls
            record.last = now
            if record.first is None:
                record.first = now
            sent -= 1
            if not sent:
                return

    def get(self, plug_id):
        return self.records.get(plug_id)

    def summary(self, plug_id, now):
        """What the web interface shows of a plug's delivery, or None for a plug Sense does
        not see: last answered, its age, polls carried of the last window, polls missed in a
        row, and a warning once Sense has gone more than L{NA_POLLS} polls without it."""
        record = self.records.get(plug_id)
        if record is None:
            return None
        polls = self.polls
        missed = record.missed(polls)
        last = record.last
        warning = None
        if missed > NA_POLLS:
            warning = (f"Sense has gone {missed} polls without this plug; it shows N/A after "
                       f"about {NA_POLLS}")
        return {"last_answered": last, "age": None if last is None else max(0.0, now - last),
                "carried": record.carried(polls), "polls": record.window(polls),
                "missed": missed, "warning": warning}
