"""Packets to bytes (MQTT 3.1.1).

A client sends CONNECT (with a will or without), SUBSCRIBE, PUBLISH, PINGREQ,
PUBACK and DISCONNECT. The broker's packets (CONNACK, SUBACK, PUBLISH,
PUBACK, PINGRESP) are here too, so tests and fake brokers build exactly what
the decoder reads. Encoders check their
arguments and raise C{ValueError} for what MQTT cannot carry; they are given
our own configuration, never bytes from the network.
"""

from senselink.mqtt.packets import (MAX_REMAINING_LENGTH, Connack, ConnackCode, Connect,
                                    Disconnect, PingReq, PingResp, Puback, Publish, Suback,
                                    Subscribe)

PROTOCOL_NAME = b"\x00\x04MQTT"
PROTOCOL_LEVEL = 4          # MQTT 3.1.1

PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
DISCONNECT = b"\xe0\x00"


def remaining_length(length: int) -> bytes:
    """The variable-length encoding of a remaining length (section 2.2.3)."""
    if not 0 <= length <= MAX_REMAINING_LENGTH:
        raise ValueError(f"a packet of {length} bytes is over MQTT's limit")
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


def _binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes are over MQTT's 65535 for one field")
    return len(data).to_bytes(2, "big") + data


def _string(text: str, what: str) -> bytes:
    """A UTF-8 encoded string (section 1.5.3): no U+0000, at most 65535 bytes."""
    if "\0" in text:
        raise ValueError(f"an MQTT {what} must not contain U+0000")
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"an MQTT {what} must be UTF-8 text (no lone surrogates)") from None
    return _binary(data)


def _packet_id(packet_id) -> bytes:
    if not isinstance(packet_id, int) or not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"a packet identifier is 1 to 65535, not {packet_id!r}")
    return packet_id.to_bytes(2, "big")


def _topic_name(topic: str) -> bytes:
    if not topic:
        raise ValueError("a topic name must not be empty")
    if "+" in topic or "#" in topic:
        raise ValueError("a topic name in a PUBLISH must not contain wildcards")
    return _string(topic, "topic name")


# -- what a client sends -------------------------------------------------------

def _qos(qos) -> int:
    if qos not in (0, 1, 2):
        raise ValueError(f"QoS is 0, 1 or 2, not {qos!r}")
    return qos


def connect(client_id: str, keepalive: int = 60, username=None, password=None,
            clean_session: bool = True, will=None) -> bytes:
    """CONNECT (section 3.1).

    @param password: text (sent as its UTF-8 bytes) or bytes; needs C{username}.
    @param will: a L{Will} or None. Its flag, QoS and retain bits are
        bits 2, 3-4 and 5 of the connect flags (section 3.1.2.5 to 3.1.2.7);
        its topic and message follow the client id in the payload (3.1.3).
    """
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError(f"keepalive is 0 to 65535 seconds, not {keepalive!r}")
    if password is not None and username is None:
        raise ValueError("MQTT 3.1.1 sends a password only with a user name")
    flags = 0x02 if clean_session else 0
    payload = _string(client_id, "client id")
    if will is not None:
        flags |= 0x04 | (_qos(will.qos) << 3) | (0x20 if will.retain else 0)
        payload += _topic_name(will.topic) + _binary(bytes(will.payload))
    if username is not None:
        flags |= 0x80
        payload += _string(username, "user name")
    if password is not None:
        flags |= 0x40
        payload += _binary(password.encode("utf-8") if isinstance(password, str) else password)
    body = PROTOCOL_NAME + bytes((PROTOCOL_LEVEL, flags)) + keepalive.to_bytes(2, "big")
    return _packet(0x10, body + payload)


def subscribe(packet_id: int, topics) -> bytes:
    """SUBSCRIBE (section 3.8): every C{(topic filter, QoS)} of C{topics} in one packet."""
    topics = list(topics)
    if not topics:
        raise ValueError("a SUBSCRIBE needs at least one topic filter")
    body = _packet_id(packet_id)
    for topic_filter, qos in topics:
        if not topic_filter:
            raise ValueError("a topic filter must not be empty")
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS is 0, 1 or 2, not {qos!r}")
        body += _string(topic_filter, "topic filter") + bytes((qos,))
    return _packet(0x82, body)


def pingreq() -> bytes:
    """PINGREQ (section 3.12)."""
    return PINGREQ


def puback(packet_id: int) -> bytes:
    """PUBACK (section 3.4) for a QoS 1 PUBLISH (sent by whichever side received it)."""
    return b"\x40\x02" + _packet_id(packet_id)


def disconnect() -> bytes:
    """DISCONNECT (section 3.14)."""
    return DISCONNECT


# -- what a broker sends (tests and fake brokers); PUBLISH and PUBACK go both ways --

def connack(return_code=ConnackCode.ACCEPTED, session_present: bool = False) -> bytes:
    """CONNACK (section 3.2)."""
    code = int(return_code)
    if not 0 <= code <= 0xFF:
        raise ValueError(f"a CONNACK return code is one byte, not {code!r}")
    return bytes((0x20, 2, 1 if session_present else 0, code))


def suback(packet_id: int, return_codes) -> bytes:
    """SUBACK (section 3.9)."""
    codes = bytes(return_codes)
    if not codes:
        raise ValueError("a SUBACK has at least one return code")
    return _packet(0x90, _packet_id(packet_id) + codes)


def publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False, packet_id=None,
            dup: bool = False) -> bytes:
    """PUBLISH (section 3.3), from a client or a broker; C{packet_id} for QoS 1 and 2 only.

    Fixed header: type 3, then DUP (bit 3), QoS (bits 1-2), RETAIN (bit 0);
    variable header: the topic name, then the packet identifier at QoS 1 and 2.
    """
    _qos(qos)
    if dup and not qos:
        raise ValueError("DUP is only for QoS 1 and 2")
    body = _topic_name(topic)
    if qos:
        body += _packet_id(packet_id)
    elif packet_id is not None:
        raise ValueError("a QoS 0 PUBLISH has no packet identifier")
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
    return _packet(first, body + bytes(payload))


def pingresp() -> bytes:
    """PINGRESP (section 3.13)."""
    return PINGRESP


# -- any packet value ----------------------------------------------------------------

def encode(packet) -> bytes:
    """The bytes of a packet value from L{senselink.mqtt.packets}."""
    packet_type = type(packet)
    if packet_type is Connect:
        return connect(packet.client_id, packet.keepalive, packet.username, packet.password,
                       packet.clean_session, packet.will)
    if packet_type is Connack:
        return connack(packet.return_code, packet.session_present)
    if packet_type is Publish:
        return publish(packet.topic, packet.payload, packet.qos, packet.retain,
                       packet.packet_id, packet.dup)
    if packet_type is Puback:
        return puback(packet.packet_id)
    if packet_type is Subscribe:
        return subscribe(packet.packet_id, packet.topics)
    if packet_type is Suback:
        return suback(packet.packet_id, packet.return_codes)
    simple = {PingReq: PINGREQ, PingResp: PINGRESP, Disconnect: DISCONNECT}.get(packet_type)
    if simple is None:
        raise ValueError(f"not an MQTT packet value: {packet_type.__name__}")
    return simple
