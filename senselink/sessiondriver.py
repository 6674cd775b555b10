"""The one Twisted adaptor of our sans-IO sessions (MQTT and Home Assistant).

A I{session} is a state machine in the h11 style: it never reads a clock,
arms a timer or touches a transport. Each of its methods takes what
happened and the time now (reactor seconds), and returns a list of
I{outputs}:

    session.start(now)              the connection is made
    session.receive(item, now)      bytes (MQTT) or one websocket message (Home Assistant)
    session.timeout(now)            called once L{next_deadline} has passed
    session.lost(now)               the connection ended (outputs other than events are ignored)
    session.next_deadline()         reactor seconds of the next timeout, or None

An output is L{Send} (bytes or a message for the link), L{Close} (a polite
end: DISCONNECT, a websocket close), L{Abort} (drop the connection now) or
anything else: an I{event} for the service, handed to C{on_event} in order.
The outputs are declared in L{senselink.sessionoutputs}, which sessions import
(it has no Twisted in it).

L{SessionDriver} runs a session on a I{link} (C{send(data)}, C{close(code)},
C{abort()}, C{pause_reading()}, C{resume_reading()}), with one DelayedCall
for the session's deadline. It also watches the link's outgoing buffer: when
Twisted says the buffer is full (the peer does not read what we send), the
driver stops reading, so that a flood cannot make us queue answers without
bound, and a peer that has not drained the buffer within C{stall_timeout}
seconds is dropped (L{Stalled} goes to the service first).
"""

from zope.interface import implementer

from twisted.internet.interfaces import IPushProducer

from senselink.sessionoutputs import Abort, Close, Send, Stalled

__all__ = ("Abort", "Close", "STALL_TIMEOUT", "Send", "SessionDriver", "Stalled",
           "TransportLink", "drive")

STALL_TIMEOUT = 30.0     # seconds a peer may leave our answers unread before it is dropped


@implementer(IPushProducer)
class SessionDriver:
    """Runs one session on one connection: outputs to the link and the service, one timer."""

    def __init__(self, session, link, clock, on_event, stall_timeout=STALL_TIMEOUT):
        """
        @param link: where L{Send}, L{Close} and L{Abort} go (see the module docstring).
        @param clock: an C{IReactorTime} for the deadline and the time passed in.
        @param on_event: called with each event, in order.
        """
        self.session = session
        self.link = link
        self.clock = clock
        self.on_event = on_event
        self.stall_timeout = stall_timeout
        self.ended = False         # aborted or lost: nothing more goes to the link
        self.gone = False          # the connection ended (lost was called)
        self.blocked = False       # the link's outgoing buffer is full
        self._timer = None         # the DelayedCall of the session's deadline
        self._stall = None         # the DelayedCall that drops a peer that does not read

    # -- what happens, from the connection --

    def start(self):
        self._run(self.session.start(self.clock.seconds()))

    def receive(self, item):
        if not self.ended:
            self._run(self.session.receive(item, self.clock.seconds()))

    def lost(self):
        """The connection ended: no more timers; the session's last events go out."""
        if self.gone:
            return
        self.gone = self.ended = True
        self._cancel()
        self._cancel_stall()
        for output in self.session.lost(self.clock.seconds()):
            if output.__class__ not in (Send, Close, Abort):
                self.on_event(output)

    # -- IPushProducer: Twisted tells us whether the link's buffer has room --

    def pauseProducing(self):
        """The outgoing buffer is full: read nothing more until it drains."""
        if self.ended or self.blocked:
            return
        self.blocked = True
        self.link.pause_reading()
        self._stall = self.clock.callLater(self.stall_timeout, self._stalled)

    def resumeProducing(self):
        if not self.blocked:
            return
        self.blocked = False
        self._cancel_stall()
        if not self.ended:
            self.link.resume_reading()

    def stopProducing(self):
        self._cancel_stall()

    # -- the session's outputs --

    def _run(self, outputs):
        link = self.link
        for output in outputs:
            output_type = output.__class__
            if output_type is Send:
                if not self.ended:
                    link.send(output.data)
            elif output_type is Close:
                if not self.ended:
                    link.close(output.code)
            elif output_type is Abort:
                if not self.ended:
                    self.ended = True
                    self._cancel()
                    link.abort()
            else:
                self.on_event(output)
        if not self.ended:
            self._arm()

    def _arm(self):
        deadline = self.session.next_deadline()
        timer = self._timer
        if deadline is None:
            self._cancel()
            return
        if timer is not None and timer.active():
            if timer.getTime() == deadline:
                return
            timer.cancel()
        self._timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()), self._due)

    def _due(self):
        self._timer = None
        if not self.ended:
            self._run(self.session.timeout(self.clock.seconds()))

    def _stalled(self):
        self._stall = None
        if self.ended:
            return
        self.on_event(Stalled(self.stall_timeout))
        self._run([Abort("the peer does not read")])

    def _cancel(self):
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _cancel_stall(self):
        stall, self._stall = self._stall, None
        if stall is not None and stall.active():
            stall.cancel()


class TransportLink:
    """The link of a session riding a plain Twisted transport (bytes in, bytes out)."""

    __slots__ = ("transport",)

    def __init__(self, transport):
        self.transport = transport

    def send(self, data):
        self.transport.write(data)

    def close(self, code=None):
        self.transport.loseConnection()

    def abort(self):
        self.transport.abortConnection()

    def pause_reading(self):
        self.transport.pauseProducing()

    def resume_reading(self):
        self.transport.resumeProducing()


def drive(session, transport, link, clock, on_event, stall_timeout=STALL_TIMEOUT):
    """A L{SessionDriver} for C{session} on C{link}, registered as C{transport}'s producer."""
    driver = SessionDriver(session, link, clock, on_event, stall_timeout)
    transport.registerProducer(driver, True)
    return driver
