"""What a sans-IO session returns besides its own events (no Twisted here).

L{senselink.sessiondriver} carries them out on a connection: L{Send} and
L{Close} and L{Abort} go to the link; L{Stalled} is the driver's own event.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    """Write C{data} (bytes, or a message the link encodes)."""
    data: object


@dataclass(frozen=True, slots=True)
class Close:
    """End the connection politely (a websocket close with C{code}, or after a DISCONNECT)."""
    code: object = None


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the connection now; C{reason} is for the service's log line (it was told already)."""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Stalled:
    """An event from the driver: the peer left our answers unread for C{seconds}; dropped."""
    seconds: float
