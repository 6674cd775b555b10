"""Who is polling the daemon: the Sense monitor, and Kasa clients apart.

The responder calls L{Requesters.seen} for each request it classified (the
Sense request, or a Kasa client's request) that the guard let through. That
is on the hot path, so it only stores the time and the count; the address
table changes only when a request comes from another address than the one
before, and a count mark is taken at most every L{MARK_INTERVAL} seconds.
Everything is bounded: L{MAX_ADDRESSES} addresses, L{MARKS} marks.
"""

from collections import deque

MAX_ADDRESSES = 8            # requester addresses remembered (the most recent)
MARK_INTERVAL = 10.0         # seconds between count marks ...
MARKS = 8                    # ... of which this many are kept (enough for one minute)
SILENCE = 60.0               # seconds without a Sense request before the page says so


class Requesters:
    """Requests of one kind of client: count, last time, addresses, polls per minute."""

    __slots__ = ("clock", "requests", "last", "last_peer", "addresses", "marks", "_next_mark")

    def __init__(self, clock):
        self.clock = clock
        self.requests = 0
        self.last = None             # reactor seconds of the last request, or None
        self.last_peer = None
        self.addresses = {}          # address -> reactor seconds it was last seen
        self.marks = deque(maxlen=MARKS)   # (time, requests before it)
        self._next_mark = 0.0

    def seen(self, peer):
        """A request from C{peer} (an address string) arrived now."""
        now = self.clock.seconds()
        if now >= self._next_mark:
            self.marks.append((now, self.requests))
            self._next_mark = now + MARK_INTERVAL
        self.requests += 1
        if peer != self.last_peer:
            self._switch(peer, now)
        self.last = now

    def _switch(self, peer, now):
        """Requests now come from C{peer}: book the previous address's last time."""
        addresses = self.addresses
        if self.last_peer is not None:
            addresses[self.last_peer] = self.last
        addresses.pop(peer, None)                # re-inserted last: most recent
        addresses[peer] = now
        while len(addresses) > MAX_ADDRESSES:
            del addresses[next(iter(addresses))]
        self.last_peer = peer

    def peers(self):
        """C{[(address, last seen), ...]}, most recent first."""
        out = dict(self.addresses)
        if self.last_peer is not None:
            out[self.last_peer] = self.last
        return sorted(out.items(), key=lambda item: item[1], reverse=True)

    def per_minute(self, now=None) -> float:
        """Requests per minute over about the last minute (0 after a minute of silence)."""
        if now is None:
            now = self.clock.seconds()
        if self.last is None or now - self.last >= 60.0:
            return 0.0
        base = None
        for mark in self.marks:
            if mark[0] <= now - 60.0:
                base = mark                      # the newest mark at least a minute old
            elif base is None:
                base = mark                      # younger than a minute: the oldest we have
                break
            else:
                break
        # Requests since the base mark, over at least a minute: the first minute counts
        # what has arrived so far.
        elapsed = max(now - base[0], 60.0)
        return (self.requests - base[1]) * 60.0 / elapsed


class Polling:
    """The Sense monitor's requests and Kasa clients' requests, apart; and since when we listen."""

    def __init__(self, clock, silence=SILENCE):
        self.clock = clock
        self.started = clock.seconds()
        self.silence = silence       # seconds without a Sense request that count as silence
        self.sense = Requesters(clock)
        self.kasa = Requesters(clock)

    def restart(self):
        """The daemon (re)started listening: the first-minute grace starts now."""
        self.started = self.clock.seconds()

    def sense_silent(self, now=None):
        """Seconds Sense has been silent past L{silence} (since start or its last request),
        or None while it is not."""
        if now is None:
            now = self.clock.seconds()
        since = self.sense.last if self.sense.last is not None else self.started
        quiet = now - since
        return quiet if quiet >= self.silence else None
