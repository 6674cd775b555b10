"""Multi-homed hosts, in network namespaces the tests make themselves.

The daemon runs as users start it (``python -m senselink``) in a "host"
namespace; Kasa clients (python-kasa's discovery, a Sense request, the
probe) run in a "client" namespace linked to it by veth pairs:

- one link, two addresses on the host's end: a request sent to the
  secondary address is answered from it (python-kasa matches replies by
  source address, and found nothing before);
- two links from one switch (a bridge) to the host: the host receives each
  broadcast twice, once per interface, and answers it once.
"""

import os
import sys

from twisted.internet import defer
from twisted.trial import unittest

from tests.netns import Lab

CONFIG = """\
sources:
  - static:
      plugs:
        - NAS:
            alias: "NAS Server"
            mac: 53:75:31:F6:4C:01
            max_watts: 15
        - Fan:
            alias: "Ceiling Fan"
            mac: 53:75:31:F6:4C:02
            max_watts: 40.5
"""
ALIASES = ["Ceiling Fan", "NAS Server"]


def sources(result):
    return {tuple(reply["from"]) for reply in result["replies"]}


def aliases(result):
    return sorted(reply["alias"] for reply in result["replies"])


class SecondaryAddressTests(unittest.TestCase):
    """One veth; the host's end has a primary and a secondary address (IPv4 and IPv6)."""

    def setUp(self):
        lab = self.lab = Lab(self)
        self.host = lab.namespace("host")
        self.client = lab.namespace("client")
        lab.veth(self.host, "eth0", self.client, "eth0")
        lab.address(self.host, "eth0", "10.99.1.2/24", "10.99.1.3/24", "fd99:1::2/64",
                    "fd99:1::3/64", "fe80::99:2/64")
        lab.address(self.client, "eth0", "10.99.1.10/24", "fd99:1::10/64", "fe80::99:10/64")
        lab.route(self.client, "route", "add", "default", "dev", "eth0")
        lab.route(self.host, "route", "add", "default", "dev", "eth0")
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)

    @defer.inlineCallbacks
    def check_secondary_ipv4(self):
        found = yield self.lab.client(self.client, "discover-single", "10.99.1.3", "--timeout", "3")
        self.assertNotIn("error", found, found)
        self.assertEqual(found["device"]["host"], "10.99.1.3")
        self.assertEqual(found["device"]["model"], "HS300")
        result = yield self.lab.client(self.client, "sense", "10.99.1.3", "--expect", "2")
        self.assertEqual(aliases(result), ALIASES)
        self.assertEqual(sources(result), {("10.99.1.3", 9999)})

    @defer.inlineCallbacks
    def test_ipv4_wildcard(self):
        """Bound to 0.0.0.0: unicast to the secondary is answered from it, broadcast from
        the interface's address."""
        yield self.lab.daemon(self.host, CONFIG, "0.0.0.0", self.directory)
        yield self.check_secondary_ipv4()
        result = yield self.lab.client(self.client, "sense", "10.99.1.2", "--expect", "2")
        self.assertEqual(sources(result), {("10.99.1.2", 9999)})
        result = yield self.lab.client(self.client, "sense", "255.255.255.255", "--expect", "2")
        self.assertEqual(aliases(result), ALIASES)
        self.assertEqual(sources(result), {("10.99.1.2", 9999)})
        # The probe's default, a broadcast, from the daemon's own host.
        out, err, code = yield self.lab.run(self.host, [
            sys.executable, "-m", "senselink", "probe", "--count", "2", "--timeout", "10"])
        self.assertEqual(code, 0, (out, err))
        self.assertIn("2 plug(s) answered the Sense request to 255.255.255.255:9999", out)

    @defer.inlineCallbacks
    def test_dual_stack(self):
        """Bound to :: (IPv4 and IPv6): each family's secondary, link-local with its zone,
        and the probe's IPv6 target forms."""
        yield self.lab.daemon(self.host, CONFIG, "::", self.directory)
        yield self.check_secondary_ipv4()
        result = yield self.lab.client(self.client, "sense", "fd99:1::3", "--expect", "2")
        self.assertEqual(aliases(result), ALIASES)
        self.assertEqual({host for host, port in sources(result)}, {"fd99:1::3"})
        result = yield self.lab.client(self.client, "sense", "fe80::99:2%eth0", "--expect", "2")
        self.assertEqual(aliases(result), ALIASES)
        self.assertEqual({host for host, port in sources(result)}, {"fe80::99:2"})
        for target, shown in [("fe80::99:2%eth0", "[fe80::99:2%eth0]:9999"),
                              ("[fd99:1::3]", "[fd99:1::3]:9999"),
                              ("10.99.1.3", "10.99.1.3:9999")]:
            out, err, code = yield self.lab.run(self.client, [
                sys.executable, "-m", "senselink", "probe", "--target", target, "--count", "2",
                "--timeout", "10"])
            self.assertEqual(code, 0, (target, out, err))
            self.assertIn(f"2 plug(s) answered the Sense request to {shown}", out)
            self.assertEqual(out.count(shown), 3, out)     # two rows and the summary


class TwoInterfacesTests(unittest.TestCase):
    """Two veth pairs from one switch (a bridge in the client namespace) to the host."""

    def setUp(self):
        lab = self.lab = Lab(self)
        self.host = lab.namespace("host")
        self.client = lab.namespace("client")
        lab.veth(self.host, "eth0", self.client, "port0")
        lab.veth(self.host, "eth1", self.client, "port1")
        lab.bridge(self.client, "br0", ["port0", "port1"])
        lab.address(self.host, "eth0", "10.99.2.2/24")
        lab.address(self.host, "eth1", "10.99.2.3/24")
        lab.address(self.client, "br0", "10.99.2.10/24")
        lab.route(self.client, "route", "add", "default", "dev", "br0")
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)

    @defer.inlineCallbacks
    def check_broadcast_answered_once(self, interface):
        yield self.lab.daemon(self.host, CONFIG, interface, self.directory)
        for target in ("255.255.255.255", "10.99.2.255"):
            result = yield self.lab.client(self.client, "sense", target, "--expect", "2",
                                           "--linger", "1")
            self.assertEqual(aliases(result), ALIASES, (target, result))
            self.assertEqual(len(sources(result)), 1, (target, result))
            host, port = sources(result).pop()
            self.assertIn(host, ("10.99.2.2", "10.99.2.3"))
        found = yield self.lab.client(self.client, "discover", "255.255.255.255",
                                      "--timeout", "1")
        self.assertEqual(len(found["devices"]), 1, found)

    def test_broadcast_answered_once(self):
        return self.check_broadcast_answered_once("0.0.0.0")

    def test_broadcast_answered_once_dual_stack(self):
        return self.check_broadcast_answered_once("::")
