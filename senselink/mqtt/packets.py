"""MQTT 3.1.1 packets a client (subscriber or publisher) sends and receives, as plain immutable values.

Each packet is a named tuple, so decoded packets compare equal to the ones
that were encoded. Section numbers refer to the MQTT 3.1.1 OASIS standard.
"""

from types import MappingProxyType
import enum
from typing import NamedTuple, Optional, Tuple

# Control packet types (section 2.2.1).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

TYPE_NAMES = MappingProxyType({1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC", 6: "PUBREL",
              7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE", 11: "UNSUBACK",
              12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT"})

MAX_REMAINING_LENGTH = 268_435_455   # four bytes of 7 bits (section 2.2.3)
SUBSCRIPTION_FAILURE = 0x80          # a SUBACK return code (section 3.9.3)


class ConnackCode(enum.IntEnum):
    """CONNACK return codes (section 3.2.2.3)."""

    ACCEPTED = 0
    UNACCEPTABLE_PROTOCOL_VERSION = 1
    IDENTIFIER_REJECTED = 2
    SERVER_UNAVAILABLE = 3
    BAD_USER_NAME_OR_PASSWORD = 4
    NOT_AUTHORIZED = 5

    @property
    def reason(self) -> str:
        """What the code means, for people."""
        return _CONNACK_REASONS[self]


_CONNACK_REASONS = MappingProxyType({
    ConnackCode.ACCEPTED: "connection accepted",
    ConnackCode.UNACCEPTABLE_PROTOCOL_VERSION: "the broker does not accept MQTT 3.1.1",
    ConnackCode.IDENTIFIER_REJECTED: "the broker rejected the client id",
    ConnackCode.SERVER_UNAVAILABLE: "the MQTT service is unavailable",
    ConnackCode.BAD_USER_NAME_OR_PASSWORD: "bad user name or password",
    ConnackCode.NOT_AUTHORIZED: "not authorised",
})


class Will(NamedTuple):
    """The will message of a CONNECT (sections 3.1.2.5 to 3.1.2.7, 3.1.3.2, 3.1.3.3): what the
    broker publishes for a client whose connection ends without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


class Connect(NamedTuple):
    """CONNECT (section 3.1); C{will} is a L{Will} or None (a subscriber has nothing to say)."""

    client_id: str
    keepalive: int = 60
    username: Optional[str] = None
    password: Optional[bytes] = None
    clean_session: bool = True
    will: Optional[Will] = None


class Connack(NamedTuple):
    """CONNACK (section 3.2)."""

    session_present: bool
    return_code: ConnackCode


class Publish(NamedTuple):
    """PUBLISH (section 3.3). C{packet_id} is None at QoS 0."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    packet_id: Optional[int] = None
    dup: bool = False


class OversizedPublish(NamedTuple):
    """A PUBLISH whose payload is over the decoder's limit: its first bytes and its size.

    The rest of the payload is skipped as it arrives, never held in memory.
    A QoS 1 message still needs its PUBACK.
    """

    topic: str
    head: bytes
    size: int
    qos: int = 0
    retain: bool = False
    packet_id: Optional[int] = None
    dup: bool = False


class Puback(NamedTuple):
    """PUBACK (section 3.4)."""

    packet_id: int


class Subscribe(NamedTuple):
    """SUBSCRIBE (section 3.8): C{topics} is a tuple of C{(topic filter, requested QoS)}."""

    packet_id: int
    topics: Tuple[Tuple[str, int], ...]


class Suback(NamedTuple):
    """SUBACK (section 3.9): one return code per topic, the granted QoS or 0x80 (failure)."""

    packet_id: int
    return_codes: Tuple[int, ...]


class PingReq(NamedTuple):
    """PINGREQ (section 3.12)."""


class PingResp(NamedTuple):
    """PINGRESP (section 3.13)."""


class Disconnect(NamedTuple):
    """DISCONNECT (section 3.14)."""


class Malformed(NamedTuple):
    """Bytes that are not the MQTT 3.1.1 a decoder expects; the stream cannot go on.

    C{reason} never quotes more than a few bytes of what was received.
    """

    reason: str
