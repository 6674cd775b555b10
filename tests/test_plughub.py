"""The plug hub: one way to follow the plug set in use and its changes."""

from twisted.internet import task
from twisted.trial import unittest

from senselink.plughub import PlugHub
from senselink.plugs import AggregatePlug, Plug, PlugSet


def plug(plug_id, clock, watts=0.0, cls=Plug):
    return cls(plug_id, mac="53:75:31:00:00:01", device_id="0" * 40, kind="mutable",
               clock=clock, watts=watts)


class PlugHubTests(unittest.TestCase):

    def setUp(self):
        self.clock = task.Clock()
        self.a, self.b = plug("a", self.clock), plug("b", self.clock)
        self.hub = PlugHub(PlugSet([self.a, self.b]))
        self.heard = []

    def changed(self, plug, now):
        self.heard.append(("changed", plug.id, now))

    def replaced(self, plugs):
        self.heard.append(("replaced", [p.id for p in plugs]))

    def test_a_subscriber_hears_the_set_in_use_at_once_then_each_change(self):
        self.hub.subscribe(changed=self.changed, replaced=self.replaced)
        self.clock.advance(2)
        self.a.set_power(5.0)
        self.a.set_power(5.0)            # no change: nothing heard
        self.assertEqual(self.heard, [("replaced", ["a", "b"]), ("changed", "a", 2.0)])

    def test_aggregates_are_heard_after_their_elements(self):
        whole = plug("whole", self.clock, cls=AggregatePlug)
        element = plug("e", self.clock)
        whole.add(element)
        hub = PlugHub(PlugSet([element, whole]))
        hub.subscribe(changed=self.changed)
        element.set_power(1.0)
        self.assertEqual([h[1] for h in self.heard], ["e", "whole"])

    def test_a_replace_moves_every_subscriber_in_order(self):
        order = []
        self.hub.subscribe(changed=self.changed, replaced=lambda plugs: order.append(1))
        self.hub.subscribe(replaced=lambda plugs: order.append(2))
        c = plug("c", self.clock)
        self.hub.replace(PlugSet([self.a, c]))       # a is kept (the same object)
        self.assertEqual(order, [1, 2, 1, 2])
        self.assertEqual((self.a.observers, self.b.observers, c.observers),
                         ([self.changed], [], [self.changed]))
        self.b.set_power(3.0)                        # gone: not heard
        c.set_power(4.0)
        self.assertEqual(self.heard, [("changed", "c", 0.0)])

    def test_a_cancelled_subscription_hears_nothing_more(self):
        subscription = self.hub.subscribe(changed=self.changed, replaced=self.replaced)
        subscription.cancel()
        subscription.cancel()                        # twice is harmless
        self.a.set_power(1.0)
        self.hub.replace(PlugSet([self.b]))
        self.assertEqual(self.heard, [("replaced", ["a", "b"])])
        self.assertEqual((self.a.observers, self.b.observers), ([], []))
