"""The messages waiting for the broker: the latest per topic, in the order first queued.

A broker outage costs memory in proportion to the topics, never to the time or
the number of changes: a newer message for a topic replaces the waiting one.
"""

from typing import NamedTuple


class Message(NamedTuple):
    payload: bytes
    qos: int
    retain: bool


class Outbox:
    """Topic -> L{Message}; at most C{limit} topics (then the new topic is refused)."""

    def __init__(self, limit):
        self.limit = limit
        self.waiting = {}

    def put(self, topic, payload, qos=0, retain=True):
        """Queue C{payload} for C{topic}, replacing what waits there; False when full."""
        if topic not in self.waiting and len(self.waiting) >= self.limit:
            return False
        self.waiting[topic] = Message(payload, qos, retain)
        return True

    def put_back(self, topic, message):
        """A message sent on a connection that ended unanswered: queued again unless a
        newer one for its topic waits."""
        if topic not in self.waiting and len(self.waiting) < self.limit:
            self.waiting[topic] = message

    def take(self):
        """The oldest waiting C{(topic, message)}, removed; None when empty."""
        for topic in self.waiting:
            return topic, self.waiting.pop(topic)
        return None

    def peek(self):
        for item in self.waiting.items():
            return item
        return None

    def __len__(self):
        return len(self.waiting)
