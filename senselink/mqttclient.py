"""What our MQTT clients share on Twisted: the connection to a broker and the thin
adaptor that runs one session on it. The sessions themselves have no I/O
(L{senselink.mqttsession}, the subscriber's L{senselink.sources.mqtt.session},
the publisher's L{senselink.publish.session}); the bytes are L{senselink.mqtt}'s.

 - L{broker_endpoint}: TCP (and TLS, with the CA and client certificate of the
   settings) to a L{senselink.config.broker.BrokerSettings}' broker;
 - L{retry_backoff}: the back-off both give C{ClientService} (exponential with
   jitter, at most L{MAX_RETRY_DELAY} seconds);
 - L{SessionProtocol}: one session on one connection, run by
   L{senselink.sessiondriver} (one timer for its deadlines; it stops reading
   while the broker does not read what we send, and drops a broker that has not
   read for L{senselink.sessiondriver.STALL_TIMEOUT} seconds). Each event of the
   session goes to C{hear(connection, event)}, the service's, and so does a
   last L{Lost} when the connection ends.
"""

import random

from twisted.application.internet import backoffPolicy
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from dataclasses import dataclass

from zope.interface import implementer

from twisted.internet.interfaces import IHandshakeListener, ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

from senselink.config.broker import tls_certificates
from senselink.mqttsession import DISCONNECT, NoAnswer, ProtocolError, Refused
from senselink.sessiondriver import SessionDriver, Stalled, TransportLink

MAX_RETRY_DELAY = 60.0
CONNECT_TIMEOUT = 10.0       # seconds for the TCP (and TLS) connection itself
# Events after which the connection ends: the service logged why already.
ENDING = frozenset((Refused, ProtocolError, NoAnswer, Stalled))


def broker_endpoint(reactor, settings):
    """A client endpoint to the broker of C{settings} (a BrokerSettings): TLS with C{tls}."""
    from senselink.sources.tls import client_tls
    endpoint = HostnameEndpoint(reactor, settings.host, settings.broker_port,
                                timeout=CONNECT_TIMEOUT)
    if settings.tls is None:
        return endpoint
    trust, mine = tls_certificates(settings.tls)
    return wrapClientTLS(client_tls(settings.host, trust, mine), endpoint)


def retry_backoff():
    """Seconds before a retry, given the failed attempts in a row (1.5ⁿ s, jitter, ≤ 59+1 s)."""
    return backoffPolicy(initialDelay=1.0, maxDelay=MAX_RETRY_DELAY - 1.0, factor=1.5,
                         jitter=random.random)


@dataclass(frozen=True, slots=True)
class Lost:
    """The last event of a connection: it ended (C{reason}, a Failure); C{reported} when an
    event before said why (L{ENDING})."""
    reason: Failure
    reported: bool


@implementer(IHandshakeListener)
class SessionProtocol(Protocol):
    """One MQTT session (without I/O) on one Twisted connection; its events go to C{hear}.

    The driver is the transport's producer (it stops reading while the broker
    does not read us). Over TLS it becomes so only once the handshake is done:
    TLS pauses its producer while it holds our first bytes for the handshake,
    and a driver that stopped reading then would never see the handshake end.
    """

    def __init__(self, session, clock, hear):
        """
        @param session: an L{senselink.mqttsession.MqttSession}.
        @param clock: an C{IReactorTime}: the session's deadlines and the stall timeout.
        @param hear: called with this connection and each event, in order.
        """
        self.session = session
        self.clock = clock
        self.hear = hear
        self.driver = None
        self.reported = False      # an event said why the connection ends

    def connectionMade(self):
        transport = self.transport
        self.driver = SessionDriver(self.session, TransportLink(transport), self.clock,
                                    self.event)
        if not ISSLTransport.providedBy(transport):
            transport.registerProducer(self.driver, True)
        self.driver.start()

    def handshakeCompleted(self):
        if not self.driver.gone:
            self.transport.registerProducer(self.driver, True)

    def dataReceived(self, data):
        self.driver.receive(data)

    def event(self, event):
        if event.__class__ in ENDING:
            self.reported = True
        self.hear(self, event)

    def connectionLost(self, reason):
        if self.driver is not None:
            self.driver.lost()
        self.hear(self, Lost(reason, self.reported))

    def tell(self, item):
        """An input from the service to the session (its outputs run as usual)."""
        if self.driver is not None:
            self.driver.receive(item)

    def disconnect(self):
        """Say goodbye to the broker (DISCONNECT, once accepted) and close the connection.

        A broker that does not read what we send would never see a polite end
        (the transport waits to write all first): it is dropped instead.
        """
        driver = self.driver
        if driver is not None and driver.blocked and not driver.ended:
            self.transport.abortConnection()
        else:
            self.tell(DISCONNECT)
