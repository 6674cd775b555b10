"""The C{mqtt} config keys, their converters and checks (L{MqttKind})."""

from types import MappingProxyType

from senselink.config import (MODEL_FIELDS, READING_FIELDS, Field, Invalid, SourceKind,
                              describe_value, check_power_paths, host, integer, state_value, string)
from senselink.mqtt.decode import DEFAULT_MAX_PAYLOAD
from senselink.mqtt.topics import filter_problem
from senselink.power import PowerModel
from senselink.sources.mqtt.service import MqttService
from senselink.sources.mqtt.settings import DEFAULT_PORT, DEFAULT_TLS_PORT, ROLES, tls_certificates
from senselink.sources.tls import CertificateFileError

MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024    # the largest max_payload_size a config may set


def tls_setting(value, raw=None):
    """C{true}/C{false}, or a mapping with C{ca_file}, C{cert_file}, C{key_file}."""
    if isinstance(value, bool):
        return {} if value else None
    if not isinstance(value, dict):
        raise Invalid(f"expected true, false or a mapping with ca_file, cert_file, key_file; "
                      f"got {describe_value(value)}")
    known = ("ca_file", "cert_file", "key_file")
    unknown = [k for k in value if k not in known]
    if unknown:
        raise Invalid(f"unknown tls key {unknown[0]!r}; known keys: {', '.join(known)}")
    out = {key: string(value[key]) for key in known if value.get(key) is not None}
    if ("cert_file" in out) != ("key_file" in out):
        raise Invalid("tls cert_file and key_file go together (the client certificate and its key)")
    try:
        tls_certificates(out)
    except CertificateFileError as e:
        raise Invalid(str(e)) from None
    return out


def _utf8_size(text):
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
        if _utf8_size(value) > limit:
            raise Invalid(f"an MQTT {what} must not be longer than {limit} bytes of UTF-8")
        return value
    return convert


def password_text(value, raw=None):
    """Any text; MQTT sends it as its UTF-8 bytes."""
    value = string(value)
    if _utf8_size(value) > 0xFFFF:
        raise Invalid("an MQTT password must not be longer than 65535 bytes of UTF-8")
    return value


SOURCE_FIELDS = MappingProxyType({
    "host": Field(host, required=True, doc="MQTT broker host name or IP address"),
    "port": Field(integer(minimum=1, maximum=65535),
                  doc=f"Broker port (default {DEFAULT_PORT}, {DEFAULT_TLS_PORT} with tls)"),
    "username": Field(mqtt_text("user name"), doc="User name (default: connect anonymously)"),
    "password": Field(password_text, doc="Password, any UTF-8 text (never logged)", secret=True),
    "client_id": Field(mqtt_text("client id"),
                       doc="MQTT client id (default: stable, from host name and config)"),
    "keepalive": Field(integer(minimum=0, maximum=65535), default=60,
                       doc="Seconds between keepalive pings (0: none)"),
    "qos": Field(integer(minimum=0, maximum=1), default=0, doc="Subscription QoS, 0 or 1"),
    "tls": Field(tls_setting, doc="true, or ca_file/cert_file/key_file, for TLS brokers"),
    "max_payload_size": Field(integer(minimum=16, maximum=MAX_PAYLOAD_LIMIT),
                              default=DEFAULT_MAX_PAYLOAD,
                              doc="Largest payload in bytes a plug reads; longer ones are "
                                  "skipped"),
})

PLUG_FIELDS = MappingProxyType({
    **MODEL_FIELDS,
    "on_state_value": Field(state_value, default="on", doc="State payload that means on"),
    "off_state_value": Field(state_value, default="off", doc="State payload that means off"),
    "power_topic": Field(string, doc="Topic with the power in watts"),
    "power_topic_keypath": Field(string, doc="Keypath of the power in a JSON payload"),
    **READING_FIELDS,       # in a power_topic JSON payload
    "state_topic": Field(string, doc="Topic with the on/off state"),
    "state_topic_keypath": Field(string, doc="Keypath of the state in a JSON payload"),
    "attribute_topic": Field(string, doc="Topic with an attribute such as brightness"),
    "attribute_topic_keypath": Field(string, doc="Keypath of the attribute in a JSON payload"),
})


class MqttKind(SourceKind):
    name = "mqtt"
    doc = "Plugs that follow MQTT topics"
    source_fields = SOURCE_FIELDS
    plug_fields = PLUG_FIELDS

    def check(self, source, where):
        options = source.options
        if options.get("password") is not None and options.get("username") is None:
            where.child("password").error("a password needs a username (MQTT sends none without)")
        for plug in source.plugs:
            here = plug.where or where
            topics = [role for role in ROLES if plug.get(f"{role}_topic") is not None]
            if not topics:
                here.error("an mqtt plug needs power_topic, state_topic or attribute_topic")
            if "power" in topics and "attribute" in topics:
                here.error("power_topic and attribute_topic cannot be used together: "
                           "the power is either measured or derived from the attribute")
            for role in ROLES:
                topic = plug.get(f"{role}_topic")
                if topic is not None:
                    problem = filter_problem(topic)
                    if problem:
                        here.child(f"{role}_topic").error(f"{problem}, got {topic!r}")
                elif plug.get(f"{role}_topic_keypath") is not None:
                    here.child(f"{role}_topic_keypath").error(
                        f"{role}_topic_keypath needs {role}_topic")
            for key in check_power_paths(plug.options, here, single="power_topic_keypath"):
                if "power" not in topics and key != "power_topic_keypath":
                    here.child(key).error(f"{key} needs power_topic")
            if plug.get("state_power") is not None and "state" not in topics:
                here.child("state_power").error("state_power needs state_topic")
            if ("attribute" in topics and plug.get("power_curve") is None
                    and plug.get("attribute_max") is None):
                here.child("attribute_topic").error(
                    "attribute_topic needs attribute_max (or a power_curve) to scale "
                    "the attribute to watts")

    def initial(self, plug):
        return PowerModel.from_options(plug.options).off_usage, None

    def make_service(self, source, plugs, clock):
        return MqttService(source, plugs, clock)
