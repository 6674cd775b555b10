"""Publishing plugs to MQTT, with Home Assistant discovery (the C{publish} section).

 - L{service}: the publisher, a child service of the daemon (L{Publisher})
 - L{session}: one publishing MQTT session, QoS 1 with bounded in-flight messages
 - L{feeds}: one plug's watts (rate-limited, with a heartbeat) and kWh
 - L{discovery}: topics, values and Home Assistant discovery configs (no I/O)
 - L{outbox}: the latest message per topic while the broker is away

The connection itself is L{senselink.mqttclient}'s, shared with the mqtt source.
"""

from senselink.publish.service import Publisher

__all__ = ("Publisher",)
