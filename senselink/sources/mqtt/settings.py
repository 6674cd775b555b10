"""An MQTT source's settings: its keys and their plugs' keys (L{MqttSourceSettings},
L{MqttPlugSettings}), a stable client id. The broker's keys (host, port, user, TLS
files) are L{senselink.config.broker}'s, shared with the C{publish} section. Shared
by the kind (config), the service and the routes, so that none of them imports
another for these."""

import hashlib
import socket
from dataclasses import dataclass

from senselink.config import integer, state_value, string
from senselink.config.broker import BrokerSettings, TlsSettings, tls_certificates
from senselink.config.schema import ModelSettings, ReadingSettings
from senselink.config.settings import setting
from senselink.mqtt.decode import DEFAULT_MAX_PAYLOAD

__all__ = ("MAX_PAYLOAD_LIMIT", "MqttPlugSettings", "MqttSourceSettings", "TlsSettings",
           "default_client_id", "tls_certificates")

MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024    # the largest max_payload_size a config may set


@dataclass(frozen=True)
class MqttSourceSettings(BrokerSettings):
    """The keys of an C{mqtt} source: its broker (L{BrokerSettings}) and its subscription."""

    qos: int = setting(integer(minimum=0, maximum=1), default=0,
                       doc="Subscription QoS, 0 or 1")
    max_payload_size: int = setting(integer(minimum=16, maximum=MAX_PAYLOAD_LIMIT),
                                    default=DEFAULT_MAX_PAYLOAD,
                                    doc="Largest payload in bytes a plug reads; longer ones "
                                        "are skipped")


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
