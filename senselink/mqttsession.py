"""The client side of one MQTT 3.1.1 session, without I/O: L{MqttSession} and its events.

A session is a state machine in the h11 style (see L{senselink.sessiondriver}):
bytes from the broker and the time now (plain seconds) go in; bytes to send,
the end of the connection and I{events} for the service come out, and
L{MqttSession.next_deadline} says when it must be woken. It reads no clock,
arms no timer, touches no transport and calls nothing of the service's.

What every client session does, the subscriber's
(L{senselink.sources.mqtt.session}) and the publisher's
(L{senselink.publish.session}) alike:

 - CONNECT (with the subclass's will, if any) as the connection is made, and
   L{HANDSHAKE_TIMEOUT} seconds for the CONNACK: L{Accepted} or L{Refused};
 - a PINGREQ every C{keepalive} seconds; one not answered within half the
   keepalive drops the connection (L{NoAnswer}). A PINGRESP answers only a
   PINGREQ we sent: one that answers none is a L{ProtocolError}, so that a
   broker sending PINGRESPs of its own accord never passes for alive;
 - anything that is not MQTT 3.1.1, or not what the broker may send at that
   point, drops the connection with one L{ProtocolError};
 - L{DISCONNECT} (an input, from the service) says goodbye when the client stops.

The outputs are L{senselink.sessiondriver}'s C{Send}, C{Close} and C{Abort};
the driver runs them. (Those three are plain values; this module imports no
Twisted of its own.)
"""

from dataclasses import dataclass

from senselink.mqtt import encode
from senselink.mqtt.packets import Connack, ConnackCode, PingResp, Publish
from senselink.sessionoutputs import Abort, Close, Send

HANDSHAKE_TIMEOUT = 10.0     # seconds for the CONNACK (and the answer that follows it)
SLACK = 1e-6                 # a deadline this close to now is due (the clock's rounding)

CONNECTING, SUBSCRIBING, READY = "connecting", "subscribing", "ready"
# What an answer is awaited for (as the log line says it).
CONNECT, SUBSCRIBE, PING = "the CONNECT", "the SUBSCRIBE", "a PINGREQ"


# -- events, for the service --

@dataclass(frozen=True, slots=True)
class Accepted:
    """The broker accepted the CONNECT (a subscriber's SUBSCRIBE, if any, follows)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The broker refused the CONNECT with C{code} (a ConnackCode); the connection closes."""
    code: ConnackCode


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """The broker sent what MQTT 3.1.1 does not allow (C{reason}); the connection is dropped."""
    reason: str


@dataclass(frozen=True, slots=True)
class NoAnswer:
    """The broker did not answer C{what} within C{seconds}; the connection is dropped."""
    what: str
    seconds: float


# -- inputs from the service (besides the broker's bytes) --

@dataclass(frozen=True, slots=True)
class Disconnect:
    """The client stops: DISCONNECT (once accepted) and close the connection."""


DISCONNECT = Disconnect()


class MqttSession:
    """The client side of one MQTT session; a subclass says what follows the CONNACK
    (L{accepted_now}) and reads the other packets (L{received})."""

    will = None                # a senselink.mqtt.packets.Will for the CONNECT, or None

    def __init__(self, settings, client_id, decoder):
        """
        @param settings: C{keepalive}, C{username} and C{password} (BrokerSettings).
        @param decoder: a L{senselink.mqtt.decode.Decoder} of what the broker sends.
        """
        self.settings = settings
        self.client_id = client_id
        self.keepalive = settings.keepalive
        self.decoder = decoder
        self.state = CONNECTING
        self.accepted = False      # the broker accepted the CONNECT
        self.closing = False       # nothing more is read (dropped, closed or closing)
        self.deadline = None       # when the answer the broker owes is late
        self.awaiting = None       # what that answer is for (CONNECT, SUBSCRIBE, PING)
        self.waited = 0.0          # seconds it was given
        self.next_ping = None      # when the next PINGREQ goes out
        self.pings = 0             # PINGREQs sent and not answered yet
        self.on_publish = None     # the decoder's fast way for PUBLISH, once wanted

    # -- the session's inputs --

    def start(self, now):
        settings = self.settings
        out = [Send(encode.connect(self.client_id, self.keepalive, settings.username,
                                   settings.password, will=self.will))]
        self.expect(now, HANDSHAKE_TIMEOUT, CONNECT)
        if self.keepalive:
            self.next_ping = now + self.keepalive
        return out

    def receive(self, data, now):
        """Bytes from the broker, or an input from the service (L{DISCONNECT}, ...)."""
        if data.__class__ is not bytes:
            return self.command(data, now)
        out = []
        if self.closing:
            return out
        feed = self.decoder.feed
        on_publish = self.on_publish
        packets = feed(data, on_publish)
        while packets:
            for packet in packets:
                self.packet(packet, now, out)
                if self.closing:
                    return self.finish(out)
            on_publish = self.on_publish
            packets = feed(b"", on_publish)
        return self.finish(out)

    def timeout(self, now):
        out = []
        if self.closing:
            return out
        due = now + SLACK
        if self.deadline is not None and self.deadline <= due:
            what, seconds = self.awaiting, self.waited
            self.deadline = self.awaiting = None
            return self.drop(out, NoAnswer(what, seconds))
        if self.next_ping is not None and self.next_ping <= due:
            self.next_ping = now + self.keepalive
            self.pings += 1
            out.append(Send(encode.pingreq()))
            if self.deadline is None:
                self.expect(now, self.keepalive / 2.0, PING)
        return out

    def lost(self, now):
        self.closing = True
        self.deadline = self.next_ping = None
        return []

    def next_deadline(self):
        if self.closing:
            return None
        deadline, ping = self.deadline, self.next_ping
        if deadline is None:
            return ping
        if ping is None or deadline < ping:
            return deadline
        return ping

    def command(self, item, now):
        """An input from the service; a subclass knows more of them."""
        if item.__class__ is Disconnect:
            out = []
            if not self.closing:
                if self.accepted:
                    out.append(Send(encode.disconnect()))
                self.closing = True
                self.deadline = self.next_ping = None
                out.append(Close())
            return out
        raise TypeError(f"an MQTT session does not take {item!r}")

    # -- packets --

    def packet(self, packet, now, out):
        packet_type = packet.__class__
        if packet_type is PingResp:
            if not self.pings:
                return self.fail(out, "a PINGRESP, which answers no PINGREQ")
            self.pings -= 1
            if self.awaiting is PING:
                self.answered()
        elif packet_type is Connack:
            self.connack(packet, now, out)
        elif packet_type is Publish and self.on_publish is not None:
            self.on_publish(*packet)   # came whole before the fast way was wanted
        else:
            self.received(packet, now, out)
        return out

    def connack(self, packet, now, out):
        if self.state is not CONNECTING:
            return self.fail(out, "a second CONNACK")
        self.answered()
        if packet.return_code is not ConnackCode.ACCEPTED:
            out.append(Refused(packet.return_code))
            self.closing = True
            out.append(Abort("refused"))
            return out
        if packet.session_present:
            return self.fail(out, "a CONNACK with a session present for a clean session")
        self.accepted = True
        self.state = READY
        out.append(Accepted())
        self.accepted_now(now, out)
        return out

    def accepted_now(self, now, out):
        """The broker accepted the session: the subclass goes on (subscribes, publishes)."""

    def received(self, packet, now, out):
        """A packet besides CONNACK and PINGRESP (the subclass's); a Malformed ends the stream."""
        return self.fail(out, getattr(packet, "reason", f"a {type(packet).__name__} here"))

    def finish(self, out):
        """The outputs of one C{receive}, completed (a subclass adds what it batched)."""
        return out

    # -- answers awaited --

    def expect(self, now, seconds, what):
        """The broker must answer within C{seconds}: else the connection is dropped."""
        self.deadline = now + seconds
        self.awaiting = what
        self.waited = seconds

    def answered(self):
        self.deadline = self.awaiting = None

    # -- the end --

    def fail(self, out, reason):
        """The broker sent C{reason}: one L{ProtocolError}, and the connection is dropped."""
        return self.drop(out, ProtocolError(reason))

    def drop(self, out, event):
        self.closing = True
        self.deadline = self.next_ping = None
        out.append(event)
        out.append(Abort(type(event).__name__))
        return out
