"""TLS for the sources' client connections: certificate files and connection creators.

Every source that speaks TLS (C{hass} over C{wss://}, C{mqtt} with C{tls},
C{http} over C{https://}) loads its CA file and client certificate here, so
a bad file gets the same message whichever source names it. Messages name
the key (C{ca_file}, C{cert_file}, C{key_file}) and the path.

C{twisted.internet.ssl} and OpenSSL are imported inside the functions: a
daemon without TLS sources does not load them for this module.
"""

import re

from zope.interface import implementer

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator

from senselink.regularfile import UnreadableFile, read_regular

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
MAX_FILE = 4 * 1024 * 1024   # bytes of a certificate or key file (a CA bundle is some 200 KB)


class CertificateFileError(ValueError):
    """A CA, certificate or key file that cannot be used; the message names key and path."""


def _read(key, path):
    try:
        return read_regular(path, MAX_FILE, key)
    except UnreadableFile as e:
        raise CertificateFileError(f"cannot read {key} {path!r}: {e}") from None


def load_certificates(path, key="ca_file"):
    """Every PEM certificate in the file C{path}, as C{twisted.internet.ssl.Certificate}s.

    @raise CertificateFileError: the file cannot be read or holds no usable certificate.
    """
    blocks = _PEM_CERTIFICATE.findall(_read(key, path))
    if not blocks:
        raise CertificateFileError(f"{key} {path!r} holds no PEM certificate")
    from twisted.internet.ssl import Certificate
    try:
        return [Certificate.loadPEM(block) for block in blocks]
    except Exception as e:  # OpenSSL raises its own error types
        raise CertificateFileError(f"{key} {path!r} holds a PEM certificate that cannot be "
                                   f"read ({e})") from None


def load_ca_file(path):
    """A trust root of every certificate in the PEM file C{path} (a CA bundle or one certificate).

    @raise CertificateFileError: as L{load_certificates}.
    """
    from twisted.internet.ssl import trustRootFromCertificates
    return trustRootFromCertificates(load_certificates(path))


def load_client_certificate(cert_file, key_file):
    """The client certificate in PEM file C{cert_file} with its unencrypted key in C{key_file}.

    @raise CertificateFileError: a file cannot be read, or they are not a certificate and its key.
    """
    data = _read("cert_file", cert_file) + b"\n" + _read("key_file", key_file)
    from twisted.internet.ssl import PrivateCertificate
    try:
        return PrivateCertificate.loadPEM(data)
    except Exception:  # OpenSSL raises its own error types
        raise CertificateFileError(f"cert_file {cert_file!r} and key_file {key_file!r} are not "
                                   f"a PEM certificate and its unencrypted key") from None


def ca_file_path(value, raw=None):
    """Config converter: the path of a readable PEM file holding at least one certificate."""
    # Imported here: the config's broker settings import this module (TLS files are
    # checked as a config is read), so this one needs the config's converters only here.
    from senselink.config.fields import Invalid, string
    path = string(value)
    try:
        load_certificates(path)
    except CertificateFileError as e:
        raise Invalid(str(e)) from None
    return path


def client_tls(hostname, trust=None, certificate=None):
    """The connection creator that checks the server's certificate and host name.

    @param trust: a trust root (L{load_ca_file}); None trusts the system's CAs.
    @param certificate: a client certificate (L{load_client_certificate}) or None.
    """
    from twisted.internet.ssl import optionsForClientTLS
    return optionsForClientTLS(hostname, trustRoot=trust, clientCertificate=certificate)


@implementer(IOpenSSLClientConnectionCreator)
class UnverifiedTLS:
    """TLS without certificate or host name checks (C{verify_tls: false}); still sends SNI."""

    def __init__(self, hostname: str):
        from twisted.internet.ssl import CertificateOptions
        self._context = CertificateOptions(verify=False).getContext()
        self._hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol):
        from OpenSSL import SSL
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        if not (isIPAddress(self._hostname) or isIPv6Address(self._hostname)):
            connection.set_tlsext_host_name(self._hostname.encode("idna"))
        return connection
