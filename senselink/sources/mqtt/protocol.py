"""The mqtt source's connection on Twisted: L{MqttClientProtocol}, a thin adaptor.

The session is L{senselink.sources.mqtt.session.SubscriberSession} (no I/O);
L{senselink.mqttclient.SessionProtocol} runs it. Messages go from the
decoder straight to the source's router; the events of the session go to
the service's C{hear}.
"""

from twisted.internet.protocol import Factory

from senselink.mqttclient import SessionProtocol
from senselink.sources.mqtt.session import SubscriberSession

__all__ = ("MqttClientFactory", "MqttClientProtocol")


class MqttClientProtocol(SessionProtocol):
    """One subscriber session of a source service on one connection."""

    def __init__(self, service):
        router = service.router
        session = SubscriberSession(service.settings, service.client_id, router.topics,
                                    router.publish, service.max_payload)
        super().__init__(session, service.clock, service.hear)
        self.service = service
        self.router = router

    def dataReceived(self, data):
        router = self.router
        applied = router.applied
        self.driver.receive(data)
        if router.applied != applied:
            self.service.touch()


class MqttClientFactory(Factory):
    """Builds one L{MqttClientProtocol} per connection of a source service."""

    noisy = False

    def __init__(self, service):
        self.service = service

    def buildProtocol(self, addr):
        return MqttClientProtocol(self.service)
