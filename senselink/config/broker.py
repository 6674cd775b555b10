"""An MQTT broker connection's settings (L{BrokerSettings}): host, port, user, password,
TLS files, client id, keepalive. The C{mqtt} source's settings and the C{publish} section
both extend them, so that both read a broker the same way, with the same bounds."""

from dataclasses import dataclass, fields

from senselink.config.fields import Invalid, describe_value, host, integer, string
from senselink.config.settings import setting
from senselink.sources.tls import CertificateFileError, load_ca_file, load_client_certificate

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True)
class TlsSettings:
    """The files of a C{tls} setting (C{tls: true}: none of them, the system's CAs)."""

    ca_file: str = None         # CA certificates to trust instead of the system's
    cert_file: str = None       # a client certificate (with key_file)
    key_file: str = None


TLS_KEYS = tuple(f.name for f in fields(TlsSettings))


def tls_certificates(tls):
    """C{(trust root or None, client certificate or None)} from the files of a
    L{TlsSettings}.

    @raise CertificateFileError: a file cannot be used.
    """
    trust = load_ca_file(tls.ca_file) if tls.ca_file else None
    mine = None
    if tls.cert_file:
        mine = load_client_certificate(tls.cert_file, tls.key_file)
    return trust, mine


def tls_setting(value, raw=None):
    """C{true}/C{false}, or a mapping with C{ca_file}, C{cert_file}, C{key_file}: a
    L{TlsSettings}, or None for no TLS."""
    if isinstance(value, bool):
        return TlsSettings() if value else None
    if not isinstance(value, dict):
        raise Invalid(f"expected true, false or a mapping with ca_file, cert_file, key_file; "
                      f"got {describe_value(value)}")
    unknown = [k for k in value if k not in TLS_KEYS]
    if unknown:
        raise Invalid(f"unknown tls key {unknown[0]!r}; known keys: {', '.join(TLS_KEYS)}")
    tls = TlsSettings(**{key: string(value[key]) for key in TLS_KEYS
                         if value.get(key) is not None})
    if (tls.cert_file is None) != (tls.key_file is None):
        raise Invalid("tls cert_file and key_file go together (the client certificate and its key)")
    try:
        tls_certificates(tls)
    except CertificateFileError as e:
        raise Invalid(str(e)) from None
    return tls


def utf8_size(text):
    """The size of C{text} in UTF-8 bytes."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise Invalid("expected UTF-8 text") from None


def mqtt_text(what, limit=0xFFFF):
    """A converter for text MQTT carries as a UTF-8 string: no NUL, at most 65535 bytes."""
    def convert(value, raw=None):
        value = string(value)
        if "\0" in value:
            raise Invalid(f"an MQTT {what} must not contain NUL")
        if utf8_size(value) > limit:
            raise Invalid(f"an MQTT {what} must not be longer than {limit} bytes of UTF-8")
        return value
    return convert


def password_text(value, raw=None):
    """Any text; MQTT sends it as its UTF-8 bytes."""
    value = string(value)
    if utf8_size(value) > 0xFFFF:
        raise Invalid("an MQTT password must not be longer than 65535 bytes of UTF-8")
    return value


@dataclass(frozen=True)
class BrokerSettings:
    """The keys of one MQTT broker connection."""

    host: str = setting(host, required=True, doc="MQTT broker host name or IP address")
    port: int = setting(integer(minimum=1, maximum=65535),
                        doc=f"Broker port (default {DEFAULT_PORT}, {DEFAULT_TLS_PORT} with tls)")
    username: str = setting(mqtt_text("user name"),
                            doc="User name (default: connect anonymously)")
    password: str = setting(password_text, doc="Password, any UTF-8 text (never logged)",
                            secret=True)
    client_id: str = setting(mqtt_text("client id"),
                             doc="MQTT client id (default: stable, from host name and config)")
    keepalive: int = setting(integer(minimum=0, maximum=65535), default=60,
                             doc="Seconds between keepalive pings (0: none)")
    tls: TlsSettings = setting(tls_setting,
                               doc="true, or ca_file/cert_file/key_file, for TLS brokers")

    @property
    def broker_port(self):
        """C{port}, else the MQTT port: 8883 with C{tls}, 1883 without."""
        if self.port is not None:
            return self.port
        return DEFAULT_TLS_PORT if self.tls is not None else DEFAULT_PORT
