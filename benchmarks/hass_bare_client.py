"""The reference consumer of the Home Assistant ingest benchmark: a bare Autobahn client.

    python3 hass_bare_client.py URL TOKEN COUNT

Authenticates, subscribes with ``subscribe_entities``, prints ``subscribed``
once the initial states arrived, then only ``json.loads`` each message and
counts the entities changed (``c``); after COUNT changes it prints the
wall-clock time (``time.time()``) and exits.
"""

import json
import sys
import time

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet import reactor


class Bare(WebSocketClientProtocol):
    def onOpen(self):
        self.changes = 0
        self.subscribed = False

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        if self.subscribed:
            event = message.get("event")
            if event is not None and "c" in event:
                self.changes += len(event["c"])
                if self.changes >= self.factory.count:
                    print(repr(time.time()), flush=True)
                    reactor.stop()
            return
        kind = message.get("type")
        if kind == "auth_required":
            self.sendMessage(json.dumps({"type": "auth", "access_token": self.factory.token}).encode())
        elif kind == "auth_ok":
            self.sendMessage(json.dumps({"id": 1, "type": "subscribe_entities"}).encode())
        elif kind == "event" and "a" in message["event"]:
            self.subscribed = True
            print("subscribed", flush=True)


def main():
    url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    factory = WebSocketClientFactory(url)
    factory.protocol = Bare
    factory.token = token
    factory.count = count
    connectWS(factory)
    reactor.callLater(300, reactor.stop)   # bounded
    reactor.run()


if __name__ == "__main__":
    main()
