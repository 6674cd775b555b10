"""An MQTT source's settings: its keys and their plugs' keys (L{MqttSourceSettings},
L{MqttPlugSettings}) with their converters, TLS files, a stable client id. Shared
by the kind (config), the service and the routes, so that none of them imports
another for these."""

import hashlib
import socket
from dataclasses import dataclass, fields

from senselink.config import Invalid, describe_value, host, integer, state_value, string
from senselink.config.schema import ModelSettings, ReadingSettings
from senselink.config.settings import setting
from senselink.mqtt.decode import DEFAULT_MAX_PAYLOAD
from senselink.sources.tls import CertificateFileError, load_ca_file, load_client_certificate

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024    # the largest max_payload_size a config may set


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
class MqttSourceSettings:
    """The keys of an C{mqtt} source: its broker and its session."""

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
    qos: int = setting(integer(minimum=0, maximum=1), default=0,
                       doc="Subscription QoS, 0 or 1")
    tls: TlsSettings = setting(tls_setting,
                               doc="true, or ca_file/cert_file/key_file, for TLS brokers")
    max_payload_size: int = setting(integer(minimum=16, maximum=MAX_PAYLOAD_LIMIT),
                                    default=DEFAULT_MAX_PAYLOAD,
                                    doc="Largest payload in bytes a plug reads; longer ones "
                                        "are skipped")

    @property
    def broker_port(self):
        """C{port}, else the MQTT port: 8883 with C{tls}, 1883 without."""
        if self.port is not None:
            return self.port
        return DEFAULT_TLS_PORT if self.tls is not None else DEFAULT_PORT


@dataclass(frozen=True)
class MqttPlugSettings(ModelSettings, ReadingSettings):
    """The keys of an C{mqtt} plug: the power model's, a reading in parts (in a
    C{power_topic} JSON payload), and a topic (with a keypath) per role."""

    on_state_value: str = setting(state_value, default="on", doc="State payload that means on")
    power_topic: str = setting(string, doc="Topic with the power in watts")
    power_topic_keypath: str = setting(string, doc="Keypath of the power in a JSON payload")
    state_topic: str = setting(string, doc="Topic with the on/off state")
    state_topic_keypath: str = setting(string, doc="Keypath of the state in a JSON payload")
    attribute_topic: str = setting(string, doc="Topic with an attribute such as brightness")
    attribute_topic_keypath: str = setting(string,
                                           doc="Keypath of the attribute in a JSON payload")

    @property
    def routes(self):
        """C{(role, topic, keypath)} for the roles C{power}, C{state} and C{attribute};
        C{topic} None where not set."""
        return (("power", self.power_topic, self.power_topic_keypath),
                ("state", self.state_topic, self.state_topic_keypath),
                ("attribute", self.attribute_topic, self.attribute_topic_keypath))


def default_client_id(source):
    """A client id that stays the same across restarts of this host with this config."""
    settings = source.settings
    seed = "\0".join(str(part) for part in (
        socket.gethostname(), settings.host, settings.port, settings.username, source.index))
    return "senselink-" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]
