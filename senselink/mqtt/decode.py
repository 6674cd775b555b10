"""A byte stream to MQTT 3.1.1 packets: L{Decoder}.

A decoder reads what one side of a connection sends: C{Decoder(BROKER)} what
a broker sends a client (CONNACK, PUBLISH, PUBACK, SUBACK, PINGRESP),
C{Decoder(CLIENT)} what our clients send (CONNECT with or without a will,
SUBSCRIBE, PUBLISH, PUBACK, PINGREQ, DISCONNECT; for tests and fake brokers).
Feed it bytes however TCP cut them; it returns the packets completed so far.

Everything is checked as MQTT 3.1.1 says (fixed header flags, shortest
remaining length, exact lengths, UTF-8 strings without U+0000, non-zero
packet identifiers, known return codes, topic names without wildcards). The
first thing that is wrong ends the stream: L{Decoder.feed} returns the
packets before it and then one L{Malformed} value, and nothing after. No
input makes it raise, recurse or hold more than about C{max_payload} plus
the largest topic (64 KiB) plus 256 KiB of control packet in memory: the
payload of a PUBLISH over C{max_payload} comes out as an
L{OversizedPublish} with its first L{HEAD} bytes and its size, and the rest
of it is skipped as it arrives.
"""

from types import MappingProxyType

from senselink.mqtt.packets import (CONNACK, CONNECT, DISCONNECT, PINGREQ, PINGRESP, PUBACK,
                                    PUBLISH, SUBACK, SUBSCRIBE, SUBSCRIPTION_FAILURE, TYPE_NAMES,
                                    Connack, ConnackCode, Connect, Disconnect, Malformed,
                                    OversizedPublish, PingReq, PingResp, Puback, Publish, Suback,
                                    Subscribe, Will)
from senselink.mqtt.topics import filter_problem

BROKER = "broker"     # a decoder of what a broker sends (the client's decoder)
CLIENT = "client"     # a decoder of what our client sends (a broker's, in tests)

DEFAULT_MAX_PAYLOAD = 64 * 1024
HEAD = 200                      # bytes kept of a payload over the limit
MAX_CONTROL = 256 * 1024        # bytes of any packet but PUBLISH
TOPIC_CACHE = 4096              # topic names remembered, decoded and checked, per decoder

# packet type -> (fixed header flags, smallest and largest remaining length)
_FROM = MappingProxyType({
    BROKER: {CONNACK: (0, 2, 2), PUBACK: (0, 2, 2), SUBACK: (0, 3, MAX_CONTROL),
             PINGRESP: (0, 0, 0)},
    CLIENT: {CONNECT: (0, 12, MAX_CONTROL), SUBSCRIBE: (2, 6, MAX_CONTROL), PUBACK: (0, 2, 2),
             PINGREQ: (0, 0, 0), DISCONNECT: (0, 0, 0)},
})

_new = tuple.__new__
_PINGRESP = PingResp()
_PINGREQ = PingReq()
_DISCONNECT = Disconnect()


class _Bad(Exception):
    """Raised inside the decoder only; L{Decoder.feed} turns it into L{Malformed}."""


class Decoder:
    """Splits one direction of an MQTT 3.1.1 connection into packet values."""

    def __init__(self, sender=BROKER, max_payload=DEFAULT_MAX_PAYLOAD, max_qos=2):
        """
        @param sender: L{BROKER} or L{CLIENT}: whose packets this stream carries.
        @param max_payload: the largest PUBLISH payload delivered whole, in bytes.
        @param max_qos: the highest QoS of a PUBLISH that is not an error (the
            QoS a subscriber asked for: a broker never sends more).
        """
        if sender not in _FROM:
            raise ValueError(f"sender is BROKER or CLIENT, not {sender!r}")
        self.sender = sender
        self.max_payload = int(max_payload)
        self.max_qos = max_qos
        self._types = _FROM[sender]
        # A PUBLISH this long or shorter has at most max_payload bytes of payload.
        self._whole = self.max_payload + 3
        # The usual packet, read on a short path: a QoS 0 PUBLISH with a 1-byte length.
        self._fast = min(127, self._whole)
        self._topics = {}          # raw topic name -> the checked text
        self._pending = []         # the start of a packet not all received yet, in pieces
        self._pending_size = 0
        self._needed = 0           # bytes that start needs before it can be read further
        self._skip = 0             # bytes still to drop of an oversized payload
        self.ended = False         # a Malformed was returned: nothing more is read

    def feed(self, data, on_publish=None) -> list:
        """The packets completed by C{data}: values of L{senselink.mqtt.packets}.

        After malformed input the list ends with one L{Malformed}; then nothing.

        @param on_publish: given the fields of each L{Publish} (C{topic, payload,
            qos, retain, packet_id, dup}) as it is read, instead of a value made
            and returned (the fast way). Then the list holds at most one packet,
            the first other one, where reading stops: the caller sees all in
            order, and goes on with C{feed(b"", on_publish)}.
        """
        out = []
        if self.ended:
            return out
        if data.__class__ is not bytes:
            data = bytes(data)
        if self._skip:
            if len(data) <= self._skip:
                self._skip -= len(data)
                return out
            data = data[self._skip:]
            self._skip = 0
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._needed:
                return out         # a large packet still arriving: join its pieces once
            data = b"".join(self._pending)
            self._pending = []
        if on_publish is None:
            append = out.append

            def on_publish(*fields):
                append(_new(Publish, fields))
            stop = False
        else:
            stop = True
        try:
            self._read(data, out, on_publish, stop)
        except _Bad as e:
            self.ended = True
            self._pending = []
            out.append(Malformed(str(e)))
        return out

    def _read(self, data, out, on_publish, stop):
        append = out.append
        topics = self._topics
        fast = self._fast
        size = len(data)
        offset = 0
        needed = 2
        while size - offset >= 2:
            first = data[offset]
            length = data[offset + 1]
            if length <= fast and (first == 0x30 or first == 0x31):
                end = offset + 2 + length
                if end > size:
                    needed = end - offset
                    break
                if length < 2:
                    raise _Bad("a PUBLISH too short for its topic")
                topic_end = offset + 4 + ((data[offset + 2] << 8) | data[offset + 3])
                if topic_end > end:
                    raise _Bad("a PUBLISH shorter than its topic")
                raw = data[offset + 4:topic_end]
                topic = topics.get(raw)
                if topic is None:
                    topic = self._topic(raw)
                on_publish(topic, data[topic_end:end], 0, first == 0x31, None, False)
                offset = end
                continue
            # Remaining length: 1 to 4 bytes of 7 bits, low bits first (section 2.2.3).
            start = offset + 2
            if length & 0x80:
                length &= 0x7F
                shift = 7
                while True:
                    if start >= size:
                        length = None
                        break
                    byte = data[start]
                    start += 1
                    length |= (byte & 0x7F) << shift
                    if not byte & 0x80:
                        if not byte:
                            raise _Bad("a remaining length not in its shortest form")
                        break
                    shift += 7
                    if shift > 21:
                        raise _Bad("a remaining length of more than four bytes")
                if length is None:
                    needed = size - offset + 1
                    break
            packet_type = first >> 4
            if packet_type == PUBLISH:
                before = len(out)
                read = self._read_publish(data, offset, start, length, first & 0x0F, on_publish,
                                          append)
                if read < 0:
                    needed = -read
                    break
                if read > size:
                    self._skip = read - size
                    return
                offset = read
                if stop and len(out) > before:
                    needed = 0
                    break
                continue
            limits = self._types.get(packet_type)
            if limits is None:
                name = TYPE_NAMES.get(packet_type, f"reserved type {packet_type}")
                raise _Bad(f"a {name} packet, which the {self.sender} does not send here")
            flags, shortest, longest = limits
            name = TYPE_NAMES[packet_type]
            if first & 0x0F != flags:
                raise _Bad(f"a {name} with flags {first & 0x0F:#x} (must be {flags:#x})")
            if not shortest <= length <= longest:
                raise _Bad(f"a {name} of {length} bytes (it has {shortest} to {longest})")
            end = start + length
            if end > size:
                needed = end - offset
                break
            append(_PARSERS[packet_type](data[start:end]))
            offset = end
            if stop:
                needed = 0
                break
        if offset < size:
            rest = data[offset:]
            self._pending = [rest]
            self._pending_size = len(rest)
            self._needed = needed

    def _read_publish(self, data, offset, start, length, flags, on_publish, append):
        """Read the PUBLISH at C{offset}: its end, or minus the bytes it needs from C{offset}.

        An end beyond the data is an oversized payload whose rest is to be skipped.
        """
        qos = (flags >> 1) & 3
        if qos > self.max_qos:
            raise _Bad("a PUBLISH with QoS 3" if qos == 3 else
                       f"a QoS {qos} PUBLISH on a subscription of QoS {self.max_qos}")
        if flags & 0x08 and not qos:
            raise _Bad("a QoS 0 PUBLISH marked DUP")
        size = len(data)
        header = 2 + (2 if qos else 0)     # topic length and packet identifier
        if length < header + 1:
            raise _Bad("a PUBLISH too short for its topic")
        end = start + length
        if length <= self._whole:
            if end > size:
                return offset - end
            payload_size = None
        else:
            if start + 2 > size:
                return offset - start - 2
            payload_size = length - header - ((data[start] << 8) | data[start + 1])
            if payload_size < 0:
                raise _Bad("a PUBLISH shorter than its topic")
            if payload_size <= self.max_payload:
                if end > size:
                    return offset - end
                payload_size = None
        topic_end = start + 2 + ((data[start] << 8) | data[start + 1])
        payload_start = topic_end + header - 2
        if payload_start > end:
            raise _Bad("a PUBLISH shorter than its topic")
        if payload_size is not None:
            head_end = payload_start + min(HEAD, payload_size)
            if head_end > size:
                return offset - head_end
        raw = data[start + 2:topic_end]
        topic = self._topics.get(raw)
        if topic is None:
            topic = self._topic(raw)
        packet_id = None
        if qos:
            packet_id = (data[topic_end] << 8) | data[topic_end + 1]
            if not packet_id:
                raise _Bad("a PUBLISH with packet identifier 0")
        retain, dup = bool(flags & 1), bool(flags & 8)
        if payload_size is None:
            on_publish(topic, data[payload_start:end], qos, retain, packet_id, dup)
        else:
            append(_new(OversizedPublish, (topic, data[payload_start:head_end], payload_size, qos,
                                           retain, packet_id, dup)))
        return end

    def _topic(self, raw):
        """The topic name C{raw} as text, checked (section 4.7.3)."""
        try:
            topic = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad("a PUBLISH topic that is not UTF-8") from None
        if not topic:
            raise _Bad("a PUBLISH with an empty topic")
        if "\0" in topic or "+" in topic or "#" in topic:
            raise _Bad("a PUBLISH topic with NUL or a wildcard")
        if len(self._topics) < TOPIC_CACHE:
            self._topics[raw] = topic
        return topic


# -- the bodies of the other packets ----------------------------------------------

def _packet_id(body, at=0):
    packet_id = (body[at] << 8) | body[at + 1]
    if not packet_id:
        raise _Bad("a packet identifier 0")
    return packet_id


def _field(body, at, what):
    """C{(bytes, next offset)}: a two-byte length and that many bytes (section 1.5)."""
    if at + 2 > len(body):
        raise _Bad(f"a packet that ends inside its {what}")
    end = at + 2 + ((body[at] << 8) | body[at + 1])
    if end > len(body):
        raise _Bad(f"a {what} longer than its packet")
    return body[at + 2:end], end


def _text(body, at, what):
    raw, end = _field(body, at, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad(f"a {what} that is not UTF-8") from None
    if "\0" in text:
        raise _Bad(f"a {what} with U+0000")
    return text, end


def _connack(body):
    if body[0] & 0xFE:
        raise _Bad("a CONNACK with reserved flags set")
    code = body[1]
    if code > 5:
        raise _Bad(f"a CONNACK return code {code}, which MQTT 3.1.1 does not define")
    if code and body[0]:
        raise _Bad("a refusing CONNACK with session present")
    return Connack(bool(body[0]), ConnackCode(code))


def _suback(body):
    packet_id = _packet_id(body)
    codes = tuple(body[2:])
    for code in codes:
        if code > 2 and code != SUBSCRIPTION_FAILURE:
            raise _Bad(f"a SUBACK return code {code:#x}")
    return Suback(packet_id, codes)


def _connect(body):
    if body[:6] != b"\x00\x04MQTT":
        raise _Bad("a CONNECT for another protocol than MQTT")
    if body[6] != 4:
        raise _Bad(f"a CONNECT for protocol level {body[6]}, not 4 (MQTT 3.1.1)")
    flags = body[7]
    if flags & 0x01:
        raise _Bad("a CONNECT with the reserved flag set")
    will_qos = (flags >> 3) & 3
    if not flags & 0x04 and flags & 0x38:
        raise _Bad("a CONNECT with will QoS or will retain but no will")
    if will_qos == 3:
        raise _Bad("a CONNECT with will QoS 3")
    if flags & 0x40 and not flags & 0x80:
        raise _Bad("a CONNECT with a password but no user name")
    keepalive = (body[8] << 8) | body[9]
    client_id, at = _text(body, 10, "client id")
    will = None
    if flags & 0x04:
        topic, at = _text(body, at, "will topic")
        if not topic or "+" in topic or "#" in topic:
            raise _Bad("a CONNECT with an empty will topic or a wildcard in it")
        message, at = _field(body, at, "will message")
        will = Will(topic, message, will_qos, bool(flags & 0x20))
    username = password = None
    if flags & 0x80:
        username, at = _text(body, at, "user name")
    if flags & 0x40:
        password, at = _field(body, at, "password")
    if at != len(body):
        raise _Bad("a CONNECT with bytes after its fields")
    return Connect(client_id, keepalive, username, password, bool(flags & 0x02), will)


def _subscribe(body):
    packet_id = _packet_id(body)
    topics = []
    at = 2
    while at < len(body):
        topic_filter, at = _text(body, at, "topic filter")
        problem = filter_problem(topic_filter)
        if problem:
            raise _Bad(f"a SUBSCRIBE topic filter that is not valid ({problem})")
        if at >= len(body):
            raise _Bad("a SUBSCRIBE topic filter without its QoS")
        qos = body[at]
        if qos > 2:
            raise _Bad(f"a SUBSCRIBE QoS byte {qos:#x}")
        topics.append((topic_filter, qos))
        at += 1
    return Subscribe(packet_id, tuple(topics))


_PARSERS = MappingProxyType({
    CONNACK: _connack,
    SUBACK: _suback,
    PINGRESP: lambda body: _PINGRESP,
    CONNECT: _connect,
    SUBSCRIBE: _subscribe,
    PUBACK: lambda body: Puback(_packet_id(body)),
    PINGREQ: lambda body: _PINGREQ,
    DISCONNECT: lambda body: _DISCONNECT,
})
