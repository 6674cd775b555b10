"""Benchmark harness, not the daemon: our daemon plus a UDP control port that changes plugs.

``twistd senselink-bench-control --control-port P -c CONFIG ...`` is ``twistd
senselink`` (same options, same service tree) with one more UDP port on
127.0.0.1: a datagram ``b"K VALUE"`` sets the power of the first K plugs (in
config order) to VALUE watts with ``Plug.set_power`` -- what every source's
feed does on a new value -- and is answered ``b"ok K"``. ``changes.py`` uses
it to change K of N plugs between two Sense polls at a known moment, for the
cost of changes between requests.
"""

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

from senselink.tap import Options as _Options
from senselink.tap import makeService as _makeService


class Options(_Options):
    optParameters = _Options.optParameters + [
        ["control-port", None, 0, "UDP port on 127.0.0.1 for change commands", int],
    ]


class Control(DatagramProtocol):
    def __init__(self, plugs):
        self.plugs = plugs

    def datagramReceived(self, data, addr):
        k, value = data.split()
        k, value = int(k), float(value)
        for plug in self.plugs[:k]:
            plug.set_power(value)
        self.transport.write(b"ok %d" % k, addr)


def makeService(options):
    service = _makeService(options)
    plugs = [plug for plug in service.daemon.plugs if plug.reported]   # (twistd's root holds the daemon)
    reactor.listenUDP(options["control-port"], Control(plugs), interface="127.0.0.1")
    return service
