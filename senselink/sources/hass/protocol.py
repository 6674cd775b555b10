"""The websocket connection to Home Assistant (Autobahn), carrying one L{HassSession}.

L{HassClientProtocol} turns websocket messages into calls of its session and
is the session's link: JSON out, close, abort. It also tells the service
how the connection ended, including Autobahn's drop of an oversized message.
"""

import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

from senselink.sources.hass.session import HassSession


class HassClientProtocol(WebSocketClientProtocol):
    """One websocket connection; the conversation itself is L{session}."""

    session = None
    _too_big = False

    def connectionMade(self):
        super().connectionMade()
        service = self.factory.service
        self.session = HassSession(service, self, service.clock)
        self.session.start()

    def dataReceived(self, data):
        self.session.alive()
        super().dataReceived(data)

    def onMessage(self, payload, isBinary):
        self.session.receive(payload, isBinary)

    # -- the session's link --

    def send_json(self, message):
        self.sendMessage(json.dumps(message).encode("utf-8"))

    def close(self, code=None):
        self.sendClose(code)

    def abort(self):
        self.dropConnection(abort=True)

    # -- end --

    def onClose(self, wasClean, code, reason):
        self.session.stop()
        if self._too_big:
            code = 1009
        self._close_info = (wasClean, code, reason)

    def _max_message_size_exceeded(self, msg_size, max_msg_size, reason):
        # Autobahn's hook for oversized messages: it fails the connection by
        # dropping it (close code 1006), so remember why for the log line.
        self._too_big = True
        super()._max_message_size_exceeded(msg_size, max_msg_size, reason)

    def connectionLost(self, reason):
        self._close_info = (False, None, reason.getErrorMessage())
        try:
            super().connectionLost(reason)
        finally:
            self.session.stop()
            self.factory.service.session_closed(self.session, *self._close_info)


class HassClientFactory(WebSocketClientFactory):
    protocol = HassClientProtocol
    noisy = False

    def __init__(self, service, url, reactor):
        super().__init__(url=url, reactor=reactor)
        self.service = service
        limit = service.max_message_size
        self.setProtocolOptions(
            maxMessagePayloadSize=limit, maxFramePayloadSize=limit,
            # Our own timers on the service clock watch the handshake and the session.
            openHandshakeTimeout=0, closeHandshakeTimeout=0,
            autoPingInterval=0, tcpNoDelay=True,
        )
        self.logOctets = False
        self.logFrames = False
