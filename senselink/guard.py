"""Who gets answers, and how many: the responder's protection against abuse.

A Kasa reply is much larger than the request (one ~450-byte datagram per
plug for a 60-byte Sense poll), so an open responder is a reflection
amplifier for spoofed requests. L{Guard} drops requests from outside
C{allow_from} (default: the LAN), limits each source address with a token
bucket, and caps reply datagrams per second overall. Drops are counted and
logged at most once a minute per source address and reason.
"""

import ipaddress
from collections import OrderedDict

from senselink.config.sections import ALLOW_FROM, RATE_LIMIT
from senselink.log import Logger

log = Logger()

LOG_INTERVAL = 60.0          # seconds between log lines per (source, reason)
MAX_TRACKED = 4096           # source addresses tracked at once (buckets and log times)

DENIED, LIMITED, EXEMPT = "denied", "limited", "exempt"


def _address(host):
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TokenBucket:
    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate, capacity, now):
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now

    def take(self, now, n=1.0) -> bool:
        elapsed = now - self.stamp
        # A clock that stepped back refills nothing, and takes nothing either: a step
        # back of an hour must not leave the bucket an hour's worth of tokens short.
        tokens = min(self.capacity, self.tokens + elapsed * self.rate) if elapsed > 0.0 \
            else self.tokens
        self.stamp = now
        if tokens >= n:
            self.tokens = tokens - n
            return True
        self.tokens = tokens
        return False


class Guard:
    """Decides whether a request from C{host} is answered; counts and logs refusals."""

    def count_drops_in(self, counts):
        """Count the requests dropped in C{counts} (reason -> count), from now on."""
        self.dropped = counts

    def __init__(self, clock, allow_from=ALLOW_FROM.default, rate=RATE_LIMIT.default):
        """C{allow_from}: ip_network objects; C{rate}: a C{RateLimit}, or False (none)."""
        self.clock = clock
        self.allow = list(allow_from)
        self.rate = rate or None
        self.buckets = {}
        self.replies = (TokenBucket(rate.replies_per_second, rate.replies_per_second,
                                    clock.seconds()) if rate else None)
        self.dropped = {}        # reason -> count (see count_drops_in)
        self._logged = OrderedDict()   # (host, reason) -> time of the last log line, oldest first
        self._verdicts = {}      # host -> DENIED / LIMITED / EXEMPT

    @classmethod
    def from_config(cls, config, clock):
        settings = config.settings
        return cls(clock, settings.allow_from, settings.rate_limit)

    def _allowed(self, address):
        return any(address in network for network in self.allow
                   if network.version == address.version)

    def _classify(self, host):
        """DENIED, LIMITED or EXEMPT for C{host}; cached, since it is asked per request."""
        verdict = self._verdicts.get(host)
        if verdict is None:
            address = _address(host)
            if address is None or not self._allowed(address):
                verdict = DENIED
            elif self.rate is None or any(address in n for n in self.rate.exempt
                                          if n.version == address.version):
                verdict = EXEMPT
            else:
                verdict = LIMITED
            if len(self._verdicts) >= MAX_TRACKED:
                self._verdicts.clear()
            self._verdicts[host] = verdict
        return verdict

    def admit(self, host, replies=0) -> bool:
        """True when a request from C{host} may be answered (C{replies}: datagrams it would send).

        Checks C{allow_from}, then the source's token bucket, then (when
        C{replies} is given) the global reply cap.
        """
        verdict = self._classify(host)
        if verdict is EXEMPT:
            return True
        if verdict is DENIED:
            return self._drop(host, "not_allowed",
                              "Dropping requests from {host}: not in allow_from")
        now = self.clock.seconds()
        bucket = self.buckets.get(host)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED:
                self._forget(now)
            bucket = self.buckets[host] = TokenBucket(self.rate.requests_per_second,
                                                      self.rate.burst, now)
        if not bucket.take(now):
            return self._drop(host, "rate_limited",
                              "Dropping requests from {host}: over {limit} requests/s")
        return self.replies_ok(host, replies) if replies else True

    def replies_ok(self, host, replies) -> bool:
        """Take C{replies} datagrams from the global reply cap (exempt hosts are not limited)."""
        if self.replies is None or self._classify(host) is EXEMPT:
            return True
        if self.replies.take(self.clock.seconds(), replies):
            return True
        return self._drop(host, "reply_cap",
                          "Dropping requests from {host}: over {replies_cap} replies/s overall")

    def _forget(self, now):
        """Drop buckets that have refilled (they behave like new ones); keep the table bounded."""
        full = [h for h, b in self.buckets.items()
                if b.tokens + (now - b.stamp) * b.rate >= b.capacity]
        for host in full:
            del self.buckets[host]
        if len(self.buckets) >= MAX_TRACKED * 3 // 4:
            # Still crowded (a flood from many addresses): forget the oldest quarter.
            for host in list(self.buckets)[:MAX_TRACKED // 4]:
                del self.buckets[host]

    def _drop(self, host, reason, message):
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.complain(host, reason, message)
        return False

    def may_log(self, host, reason) -> bool:
        """True at most once per LOG_INTERVAL for this (host, reason): no host floods the log.

        The table is kept oldest first, so that when it is full only the
        entries past the interval at its front are looked at: a flood from
        many addresses costs no more per datagram than one from a few. A
        clock that stepped back makes older entries expire."""
        now = self.clock.seconds()
        key = (host, reason)
        logged = self._logged
        last = logged.get(key)
        if last is not None:
            if 0 <= now - last < LOG_INTERVAL:
                return False
            del logged[key]                  # re-inserted last: the newest
        while len(logged) >= MAX_TRACKED:
            if 0 <= now - logged[next(iter(logged))] < LOG_INTERVAL:
                return False                 # all recent: quiet until the oldest expires
            logged.popitem(last=False)
        logged[key] = now
        return True

    def complain(self, host, reason, message, **fields):
        """Log C{message} at WARNING at most once per LOG_INTERVAL for this (host, reason)."""
        if not self.may_log(host, reason):
            return False
        rate = self.rate
        log.warn(message + " (further drops from it are not logged for a minute)", host=host,
                 limit=rate.requests_per_second if rate else None,
                 replies_cap=rate.replies_per_second if rate else None, **fields)
        return True
