"""Where Sense replies go: to the requester, or to a configured C{target} host.

A host name is resolved first; while it resolves, and when it did not,
nothing is sent anywhere (never to the requester instead of the target). A
newer target wins over a late answer for an older one. A name that does not
resolve (DNS not up yet at boot) is tried again after L{RETRY_DELAYS}; a
resolved one is resolved again every L{REFRESH_INTERVAL} seconds, so a host
that DHCP moved is followed, and a failed refresh keeps the last address.
"""

import ipaddress

from senselink.log import Logger
from senselink.udp import UNRESOLVED

log = Logger()

RETRY_DELAYS = (5, 15, 60, 300)     # seconds before the next try after 1, 2, 3, more failures
REFRESH_INTERVAL = 600              # seconds between resolutions of a resolved name


def is_ip(value) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


class Target:
    """Aims the Sense replies from a host: C{aim(address)} (the UDP protocol's
    L{senselink.udp.KasaDatagramProtocol.aim}) is called with an address,
    L{senselink.udp.UNRESOLVED} (send nothing) or None (the requester).

    C{resolve} maps a host name to a Deferred firing with an address; the
    next resolutions are scheduled on C{clock}. L{stop} cancels them.
    """

    def __init__(self, aim, resolve, clock):
        self.aim = aim
        self.resolve = resolve
        self.clock = clock
        self.address = None       # what the replies were aimed at last
        self.wanted = None        # the configured target (host name or address), or None
        self.failures = 0         # failed resolutions in a row
        self._call = None         # the next resolution, scheduled
        self._stopped = False

    def set(self, target):
        self._cancel()
        self._stopped = False
        self.wanted = target or None
        self.failures = 0
        if not target:
            self._aim(None)
            return
        if is_ip(target):
            self._aim(target)
            log.info("Replies go to target {address}", address=target)
            return
        self._aim(UNRESOLVED)
        self._resolve(target)

    def _aim(self, address):
        self.address = address
        self.aim(address)

    def stop(self):
        """Resolve nothing more (the daemon stops)."""
        self._stopped = True
        self._cancel()

    def _cancel(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _later(self, delay, target):
        if not self._stopped and target == self.wanted:
            self._call = self.clock.callLater(delay, self._resolve, target)

    def _resolve(self, target):
        self._call = None
        self.resolve(target).addCallbacks(self._resolved, self._unresolved,
                                          callbackArgs=(target,), errbackArgs=(target,))

    def _resolved(self, address, target):
        if target != self.wanted:
            return          # another target was set meanwhile
        if address != self.address:
            log.info("Replies go to target {target} ({address})", target=target,
                     address=address)
        elif self.failures:
            log.info("Target {target} resolves again ({address})", target=target,
                     address=address)
        self._aim(address)
        self.failures = 0
        self._later(REFRESH_INTERVAL, target)

    def _unresolved(self, failure, target):
        if target != self.wanted:
            return
        delay = RETRY_DELAYS[min(self.failures, len(RETRY_DELAYS) - 1)]
        self.failures += 1
        if self.failures == 1:            # once until it resolves
            if self.address is UNRESOLVED:
                log.error("Cannot resolve target {target}: {reason}; Sense requests are not "
                          "answered until it resolves (trying again in {delay} s)",
                          target=target, reason=failure.getErrorMessage(), delay=delay)
            else:
                log.warn("Cannot resolve target {target} again: {reason}; replies still go to "
                         "{address} (trying again in {delay} s)", target=target,
                         reason=failure.getErrorMessage(), address=self.address,
                         delay=delay)
        self._later(delay, target)
