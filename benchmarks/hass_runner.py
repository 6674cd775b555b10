"""The tests' fake Home Assistant (tests/hass_server.py) in its own process, for ingest.py.

    python3 hass_runner.py TOKEN PLUGS

Prints the websocket URL, then answers commands read from stdin, one line each:
``subscribers`` (how many connections have a subscribe_entities subscription)
and ``push K`` (sets the ``power`` attribute of every entity to 1..K in turn,
each a change event to every subscriber, as fast as the server can; answers
the number of changes once all were handed to the connections).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import reactor, stdio  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

from tests.hass_server import FakeHomeAssistant  # noqa: E402


class Commands(LineReceiver):
    delimiter = b"\n"

    def __init__(self, home, entities):
        self.home = home
        self.entities = entities

    def lineReceived(self, line):
        words = line.decode().split()
        if words == ["subscribers"]:
            count = sum(1 for c in self.home.connections if c.entity_subscriptions)
            self.sendLine(str(count).encode())
        elif len(words) == 2 and words[0] == "push":
            changes = 0
            set_state = self.home.set_state
            for k in range(1, int(words[1]) + 1):
                for eid in self.entities:
                    changes += set_state(eid, "on", {"power": k, "unit_of_measurement": "W"})
            self.sendLine(str(changes).encode())
        else:
            self.sendLine(b"?")

    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()


def main():
    token, plugs = sys.argv[1], int(sys.argv[2])
    home = FakeHomeAssistant(token)
    entities = [f"sensor.bench_plug_{i:03d}" for i in range(plugs)]
    for eid in entities:
        home.set_state(eid, "on", {"power": 0, "unit_of_measurement": "W"})
    home.listen(0)
    stdio.StandardIO(Commands(home, entities))
    sys.stdout.write(home.url + "\n")
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
