"""One request that arrives twice is answered once.

A host on one LAN through two interfaces (Wi-Fi and Ethernet, say)
receives every broadcast twice, once on each. Answering both copies would
show a Sense monitor every plug twice, from two addresses. L{RecentRequests}
remembers, for L{WINDOW} seconds, which way each request came in (its
bytes, its sender's address and port): the same request from the same
sender arriving by another way (another interface or destination address)
within that time is a copy and is not answered.

The same request arriving the same way again is a client asking again
(retries, a monitor polling quickly) and is answered each time.

Bounded: at most L{LIMIT} requests are remembered; past that, the expired
ones and then the oldest are forgotten, down to half as many. Time comes
from the injected clock.
"""

WINDOW = 0.2     # seconds within which a copy arriving another way is not answered
LIMIT = 256      # requests remembered at most (each at most the largest datagram accepted)


class RecentRequests:
    """Requests seen in the last C{window} seconds and the way each came in."""

    __slots__ = ("clock", "window", "limit", "_seen")

    def __init__(self, clock, window=WINDOW, limit=LIMIT):
        self.clock = clock
        self.window = window
        self.limit = limit
        self._seen = {}   # (data, sender) -> (time, path)

    def __len__(self):
        return len(self._seen)

    def is_copy(self, data: bytes, sender, path) -> bool:
        """True when C{data} from C{sender} came by another C{path} less than C{window} ago.

        Otherwise it is remembered as arriving now by C{path}, and False. A
        clock that stepped back makes older entries expire, never copies.
        """
        now = self.clock.seconds()
        seen = self._seen
        key = (data, sender)
        entry = seen.get(key)
        if entry is not None and entry[1] != path and 0 <= now - entry[0] < self.window:
            return True
        seen[key] = (now, path)
        if len(seen) > self.limit:
            self._forget(now)
        return False

    def _forget(self, now):
        """Forget expired requests, then the oldest, down to half the limit."""
        seen = self._seen
        window = self.window
        for key in [key for key, (when, _) in seen.items() if not 0 <= now - when < window]:
            del seen[key]
        excess = len(seen) - self.limit // 2
        if excess > 0:
            for key in sorted(seen, key=lambda key: seen[key][0])[:excess]:
                del seen[key]
