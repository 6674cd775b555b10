"""The Sense reply cache: one encrypted HS110 reply per reported plug, kept until it changes.

A subscriber of the plug hub (L{senselink.plughub}): C{changed} per plug change,
C{replace} per new plug set. A plug that tells the cache it changed has its
reply encoded again at the next Sense request; the others' replies are
served as they are, and without C{skip_rate} anywhere the whole list of
replies is kept between changes. The C{total} (kWh) in a reply comes from
C{total_kwh(plug)} (the energy meter); L{refresh_totals} drops the replies
of plugs drawing power so their totals follow the counters.
"""

from senselink.kasa.messages import SenseReplyEncoder
from senselink.plugs import PlugSet


def _no_energy(plug):
    return 0.0


class SenseReplyCache:
    """Encrypted Sense replies of one plug set, re-encoded only for plugs that changed."""

    def __init__(self, plugs=None, total_kwh=_no_energy):
        self.total_kwh = total_kwh
        self.encoders = {}      # plug -> SenseReplyEncoder (made at the first request)
        self.replies = {}       # plug -> encrypted reply while current
        self._list = None       # the replies to a Sense request while nothing changed
        self.answered = ()      # the plugs of the last sense_replies(), in their order
        self.plugs = None
        self.replace(PlugSet() if plugs is None else plugs)

    def replace(self, plugs):
        """Serve C{plugs} (a L{senselink.plugs.PlugSet}) from now on; drop every reply."""
        self.plugs = plugs
        self.replies = {}
        # Identity (alias, device id, voltage) may have changed on a kept plug.
        self.encoders = {plug: e for plug, e in self.encoders.items() if plugs.get(plug.id) is plug
                         and e.identity == (plug.alias, plug.mac, plug.device_id, plug.voltage)}
        self._list = None

    def changed(self, plug, now=None):
        """A plug changed (the hub's C{changed}): its reply is encoded again at the next
        request."""
        self.replies.pop(plug, None)
        self._list = None

    def refresh_totals(self):
        """Drop the replies whose C{total} has grown (plugs drawing power)."""
        replies = self.replies
        for plug in self.plugs.reported:
            if plug.watts > 0.0 and plug in replies:
                del replies[plug]
                self._list = None

    def reply(self, plug) -> bytes:
        """The encrypted Sense reply of C{plug}."""
        reply = self.replies.get(plug)
        if reply is None:
            encoder = self.encoders.get(plug)
            if encoder is None:
                encoder = self.encoders[plug] = SenseReplyEncoder(
                    alias=plug.alias, mac=plug.mac, device_id=plug.device_id,
                    voltage=plug.voltage)
            reply = self.replies[plug] = encoder.encode(plug.watts, plug.on,
                                                        self.total_kwh(plug))
        return reply

    def sense_replies(self):
        """Encrypted replies to a Sense poll: one per reported plug due an answer
        (C{answered} names those plugs, in the same order)."""
        replies = self._list
        if replies is not None:
            return replies
        reported = self.answered = self.plugs.reported
        reply = self.reply
        if any(plug.skip_rate for plug in reported):
            answered = self.answered = [plug for plug in reported if plug.should_answer()]
            return [reply(plug) for plug in answered]
        # Only the plugs that changed encode their reply again; the others' are
        # read as they are.
        cached = self.replies.get
        replies = self._list = [cached(plug) or reply(plug) for plug in reported]
        return replies
