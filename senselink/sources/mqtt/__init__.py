"""MQTT plugs: power readings, on/off states and attributes (brightness) from MQTT topics.

One MQTT 3.1.1 connection per C{mqtt} source, however many plugs it has,
run by a C{ClientService} (exponential back-off with jitter, capped at
60 s). The bytes are our own (L{senselink.mqtt}, no I/O); every distinct
topic is subscribed once per connection, in one SUBSCRIBE (a clean
session), and each message fans out to the plugs on that topic through
their L{senselink.power.Feed}. Retained messages give plugs their values at
start-up. Nothing a broker or a publisher sends can crash the source or
cost a plug its last good value.

 - L{kind}: the C{mqtt} kind and its checks across keys (L{MqttKind})
 - L{settings}: the keys of a source and of its plugs, their converters (TLS files), the
   default client id
 - L{service}: the source service, its reconnection and its log lines (L{MqttService})
 - L{protocol}: one MQTT session on one connection: handshake, keepalive, PUBACKs
 - L{routes}: which plugs a message feeds and what its payload does to them
 - L{payload}: values out of payloads, bounded (size, depth); payloads in log lines
"""

from senselink.mqtt.topics import matches as topic_matches
from senselink.sources.mqtt.kind import MqttKind
from senselink.sources.mqtt.settings import default_client_id
from senselink.sources.mqtt.service import MAX_RETRY_DELAY, MqttService

__all__ = ("MAX_RETRY_DELAY", "MqttKind", "MqttService", "default_client_id", "topic_matches")
