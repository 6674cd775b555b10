"""The websocket connection to Home Assistant (Autobahn): a thin link for one L{HassSession}.

L{HassClientProtocol} hands what Autobahn saw to a
L{senselink.sessiondriver.SessionDriver} (the upgrade answered, the first
bytes of a message, a whole message, a message over the size limit) and is
the session's link: a dict out as JSON, a websocket close, an abort, and
reading paused or resumed on the TCP transport. Once the websocket is
open the driver is that transport's producer, so a server that does not read what we send (pongs
Autobahn answers to its pings included) stops our reading and is dropped.
When the connection ends it tells the service how.
"""

import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

from senselink.excerpt import clip
from senselink.sessiondriver import SessionDriver
from senselink.sources.hass.events import BEGINS, OPENED, Broken, TooLarge

DROPPED = "SenseLink dropped the connection"


class HassClientProtocol(WebSocketClientProtocol):
    """One websocket connection; the conversation itself is C{session}, run by C{driver}."""

    session = None
    driver = None
    dropped = False          # we aborted the connection (the session said why)

    def connectionMade(self):
        super().connectionMade()
        service = self.factory.service
        self.session = session = service.new_session(self)
        self.driver = SessionDriver(session, self, service.clock,
                                    lambda event: service.session_event(session, event))
        self.driver.start()

    def onOpen(self):
        # The driver becomes the transport's producer only now: TLS buffers (and pauses its
        # producer) until its handshake is done, and a paused reader would never finish it.
        self.transport.registerProducer(self.driver, True)
        self.driver.receive(OPENED)

    def onMessageBegin(self, isBinary):
        super().onMessageBegin(isBinary)
        self.driver.receive(BEGINS)

    def onMessage(self, payload, isBinary):
        self.driver.receive(payload)

    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # Autobahn's hook for a message over the limit: the session says so once and drops
        # the connection; Autobahn's own failing of it is the backstop.
        self.driver.receive(TooLarge(msg_size, max_msg_size))
        super()._max_message_size_exceeded(msg_size, max_msg_size, reason)

    def _fail_connection(self, code=1001, reason="going away"):
        # Autobahn fails the connection (bad UTF-8, a protocol violation): the session says
        # why in one line and drops it; Autobahn's own failing is the backstop.
        if code != 1009:
            self.driver.receive(Broken(reason))
        super()._fail_connection(code, reason)

    # -- the session's link --

    def send(self, message):
        self.sendMessage(json.dumps(message).encode("utf-8"))

    def close(self, code=None):
        self.sendClose(code)

    def abort(self):
        # The session logged why; marked clean so that Autobahn does not add a warning of
        # its own (the service hears of the end from connectionLost, with dropped set).
        self.dropped = True
        self.wasClean = True
        self.dropConnection(abort=True)

    def pause_reading(self):
        self.transport.pauseProducing()

    def resume_reading(self):
        self.transport.resumeProducing()

    # -- end --

    def onClose(self, wasClean, code, reason):
        self._close_info = (wasClean, code, reason)

    def connectionLost(self, reason):
        self._close_info = (False, None, reason.getErrorMessage())
        try:
            super().connectionLost(reason)
        finally:
            self.driver.lost()
            was_clean, code, _ = self._close_info
            if self.dropped:
                how = DROPPED
            elif was_clean:
                how = f"closed by the server (code {code})" if code else "closed by the server"
            else:
                how = (f"the connection was lost without a websocket close: "
                       f"{clip(reason.getErrorMessage())}")
            self.factory.service.session_closed(self.session, how, dropped=self.dropped)


class HassClientFactory(WebSocketClientFactory):
    protocol = HassClientProtocol
    noisy = False

    def __init__(self, service, url, reactor):
        super().__init__(url=url, reactor=reactor)
        self.service = service
        limit = service.max_message_size
        self.setProtocolOptions(
            maxMessagePayloadSize=limit, maxFramePayloadSize=limit,
            # The session watches the handshake, the messages and the keepalive.
            openHandshakeTimeout=0, closeHandshakeTimeout=0,
            autoPingInterval=0, tcpNoDelay=True,
        )
        self.logOctets = False
        self.logFrames = False
