"""Experiment, not the daemon: our daemon with replies written by the socket's C{sendto}.

Everything is ``twistd senselink`` (same options, same service tree, same
Responder); only the UDP protocol's reply loop differs: it calls the
listening socket's ``sendto`` directly instead of ``udp.Port.write``, which
re-checks the destination address with three ``isIPAddress``-style calls per
datagram. The destination is the address the kernel gave us for the request
(always a valid address of the socket's family) or the configured target.
Used by ``run.py --servers ...,exp-senselink-sendto`` to measure what the
change would gain before anyone changes senselink/responder.py.
"""

import errno

from senselink import log as _log
from senselink.responder import MAX_DATAGRAM, KasaDatagramProtocol
from senselink.tap import Options  # noqa: F401  (twistd reads it from this module)
from senselink.tap import makeService as _makeService

log = _log.Logger()


class SendtoKasaDatagramProtocol(KasaDatagramProtocol):
    def datagramReceived(self, data, addr):
        try:
            if len(data) > MAX_DATAGRAM:
                self.responder.counters.count(self.responder.counters.ignored, "oversized")
                return
            replies = self.responder.handle(data, addr[0])
            if replies:
                dest = (self.target, addr[1]) if self.target else addr
                sendto = self.transport.socket.sendto
                for reply in replies:
                    try:
                        sendto(reply, dest)
                    except (BlockingIOError, ConnectionRefusedError):
                        pass  # dropped, as a full buffer or an ICMP error drops UDP
                    except OSError as e:
                        if e.errno != errno.ENOBUFS:
                            raise
        except Exception:
            log.failure("Unexpected error answering a datagram from {peer}", peer=addr[0])


def makeService(options):
    service = _makeService(options)
    service.udp_protocol.__class__ = SendtoKasaDatagramProtocol
    return service
