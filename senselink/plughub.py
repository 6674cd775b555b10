"""The plug hub: the plug set in use, and the one way to follow it.

A reload replaces the set whole (L{PlugHub.replace}). Whoever follows the
plugs (the Sense reply cache, the energy meter, the delivery records, the
identities, the web interface's power history, the MQTT publisher) subscribes
once with what it wants to hear:

- C{changed(plug, now)}: a plug's watts or on/off changed. The hub puts it
  among the C{observers} of every plug of the set in use (so a change costs
  one call per subscriber, as before) and moves it to the next set;
- C{replaced(plugs)}: the set in use is C{plugs} (a L{senselink.plugs.PlugSet})
  from now on; called at once with the set in use when subscribing.

Subscribers hear a replace in the order they subscribed (the identities note
what Sense got of the old plugs before the delivery records of plugs gone go).
"""

from senselink.plugs import PlugSet


def _detach(plugs, observer):
    for plug in plugs:
        if observer in plug.observers:
            plug.observers.remove(observer)


class Subscription:
    """One subscriber of a L{PlugHub}; L{cancel} ends it."""

    __slots__ = ("hub", "changed", "replaced")

    def __init__(self, hub, changed, replaced):
        self.hub = hub
        self.changed = changed
        self.replaced = replaced

    def cancel(self):
        """Hear nothing more: detached from the plugs in use, dropped by the hub."""
        self.hub.unsubscribe(self)


class PlugHub:
    """The plug set in use (C{plugs}) and its subscribers."""

    def __init__(self, plugs=None):
        self.plugs = PlugSet() if plugs is None else plugs
        self.subscriptions = []

    def subscribe(self, changed=None, replaced=None) -> Subscription:
        """Follow the plugs: C{changed(plug, now)} after each change of a plug in use,
        C{replaced(plugs)} now and whenever the set is replaced."""
        subscription = Subscription(self, changed, replaced)
        self.subscriptions.append(subscription)
        if replaced is not None:
            replaced(self.plugs)
        if changed is not None:
            for plug in self.plugs:
                plug.observers.append(changed)
        return subscription

    def unsubscribe(self, subscription):
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
            if subscription.changed is not None:
                _detach(self.plugs, subscription.changed)

    def replace(self, plugs):
        """Run C{plugs} from now on: each subscriber, in order, is detached from the old
        set, told of the new one and attached to it (plugs kept are the same objects)."""
        old = self.plugs
        self.plugs = plugs
        for subscription in list(self.subscriptions):
            changed = subscription.changed
            if changed is not None:
                _detach(old, changed)
            if subscription.replaced is not None:
                subscription.replaced(plugs)
            if changed is not None:
                for plug in plugs:
                    plug.observers.append(changed)
