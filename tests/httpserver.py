"""A real twisted.web server on 127.0.0.1, port 0, that tests can script and clean up,
a scriptable power meter resource, and a self-signed certificate for TLS tests."""

import os

from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site


class TrackingSite(Site):
    """A Site that remembers its connections so a test can close them all before it ends."""

    noisy = False

    def __init__(self, resource, **kwargs):
        super().__init__(resource, **kwargs)
        self.protocols = []
        self.lost = []

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        lost = defer.Deferred()
        original = protocol.connectionLost

        def connectionLost(reason):
            try:
                original(reason)
            finally:
                if not lost.called:
                    lost.callback(None)

        protocol.connectionLost = connectionLost
        self.protocols.append(protocol)
        self.lost.append(lost)
        return protocol


def serve(testcase, resource, with_site=False):
    """Listen on 127.0.0.1:0 with C{resource}; return the port number (and the site).

    The listener and every connection it accepted are closed when the test ends.
    """
    site = TrackingSite(resource)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")

    def cleanup():
        stopped = defer.maybeDeferred(port.stopListening)
        for protocol in site.protocols:
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.connected:
                transport.abortConnection()
        waits = defer.gatherResults([stopped] + site.lost)
        return waits.addTimeout(5, reactor)

    testcase.addCleanup(cleanup)
    if with_site:
        return port.getHost().port, site
    return port.getHost().port


class Meter(Resource):
    """A scriptable power meter: replies C{self.reply} or holds requests open."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.reply = (200, b"0")
        self.hold = False
        self.stall_body = False
        self.requests = []
        self.held = []

    def render_GET(self, request):
        self.requests.append({"path": request.path, "uri": request.uri,
                              "headers": dict(request.requestHeaders.getAllRawHeaders())})
        if self.stall_body:
            # Headers and the start of the body, then nothing.
            self.held.append(request)
            request.notifyFinish().addErrback(lambda _: None)
            request.setHeader(b"Content-Length", b"100")
            request.write(b'{"power": ')
            return NOT_DONE_YET
        if self.hold:
            self.held.append(request)
            request.notifyFinish().addErrback(lambda _: None)
            return NOT_DONE_YET
        code, body = self.reply
        request.setResponseCode(code)
        return body

    def release(self):
        held, self.held = self.held, []
        code, body = self.reply
        for request in held:
            if not request._disconnected:
                request.setResponseCode(code)
                request.write(body)
                request.finish()


def self_signed_pem(directory):
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "senselink test meter")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    ca_path = os.path.join(directory, "ca.pem")
    with open(ca_path, "wb") as f:
        f.write(cert_pem)
    return ca_path, cert_pem, key_pem


class RawGet(Protocol):
    """Sends one plain GET of C{path} and records whatever comes back until the connection
    ends (nothing, when the server closes at once)."""

    def __init__(self, path=b"/"):
        self.data = b""
        self.ended = defer.Deferred()
        self.path = path

    def connectionMade(self):
        self.transport.write(b"GET " + self.path + b" HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.ended.callback(self.data)
