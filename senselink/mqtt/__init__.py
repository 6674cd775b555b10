"""The MQTT 3.1.1 wire protocol of a client (subscriber and publisher): packets, encoders, a
stream decoder. No I/O here.

 - L{packets}: the packets as plain values, the CONNACK return codes by name
 - L{encode}: packets to bytes (what a client sends, and for tests what a broker sends)
 - L{decode}: a byte stream to packets, strictly validated; malformed input
   gives one L{packets.Malformed} value, never an exception

The Twisted side is L{senselink.mqttclient} (connection and session), under the
mqtt source (a subscriber, L{senselink.sources.mqtt.protocol}).
"""

from senselink.mqtt.decode import BROKER, CLIENT, Decoder
from senselink.mqtt.packets import (SUBSCRIPTION_FAILURE, Connack, ConnackCode, Connect,
                                    Disconnect, Malformed, OversizedPublish, PingReq, PingResp,
                                    Puback, Publish, Suback, Subscribe, Will)

__all__ = ("BROKER", "CLIENT", "Decoder", "SUBSCRIPTION_FAILURE", "Connack", "ConnackCode",
           "Connect", "Disconnect", "Malformed", "OversizedPublish", "PingReq", "PingResp",
           "Puback", "Publish", "Suback", "Subscribe", "Will")
