"""Where Sense replies go: to the requester, or to a configured C{target} host.

A host name is resolved first; while it resolves, and when it did not,
nothing is sent anywhere (never to the requester instead of the target). A
newer target wins over a late answer for an older one.
"""

import ipaddress

from senselink.log import Logger
from senselink.udp import UNRESOLVED

log = Logger()


def is_ip(value) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


class Target:
    """Sets C{protocol.target} (a L{senselink.udp.KasaDatagramProtocol}) from a host.

    C{resolve} maps a host name to a Deferred firing with an address.
    """

    def __init__(self, protocol, resolve):
        self.protocol = protocol
        self.resolve = resolve
        self.wanted = None        # the configured target (host name or address), or None

    def set(self, target):
        self.wanted = target or None
        protocol = self.protocol
        if not target:
            protocol.target = None
            return
        if is_ip(target):
            protocol.target = target
            log.info("Replies go to target {address}", address=target)
            return
        protocol.target = UNRESOLVED
        self.resolve(target).addCallbacks(self._resolved, self._unresolved,
                                          callbackArgs=(target,), errbackArgs=(target,))

    def _resolved(self, address, target):
        if target != self.wanted:
            return          # another target was set meanwhile
        log.info("Replies go to target {target} ({address})", target=target, address=address)
        self.protocol.target = address

    def _unresolved(self, failure, target):
        if target != self.wanted:
            return
        log.error("Cannot resolve target {target}: {reason}; Sense requests are not answered",
                  target=target, reason=failure.getErrorMessage())
