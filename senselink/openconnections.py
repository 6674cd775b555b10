"""The connections a listener has open now, counted by peer address: what the Kasa TCP
port and the web listeners bound (in total and per address)."""


class OpenConnections:
    """A set of open connections with a count per peer address.

    C{add(connection, peer)} when one opens and C{discard(connection, peer)} when
    it closes (twice, or for one never added, is harmless); C{held(peer)} is how
    many that address has open. Iterating gives the connections.
    """

    def __init__(self):
        self.connections = set()
        self.by_peer = {}        # address -> connections open now from it

    def add(self, connection, peer):
        if connection not in self.connections:
            self.connections.add(connection)
            self.by_peer[peer] = self.by_peer.get(peer, 0) + 1

    def discard(self, connection, peer):
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        left = self.by_peer.get(peer, 0) - 1
        if left > 0:
            self.by_peer[peer] = left
        else:
            self.by_peer.pop(peer, None)

    def held(self, peer) -> int:
        return self.by_peer.get(peer, 0)

    def __len__(self):
        return len(self.connections)

    def __iter__(self):
        return iter(list(self.connections))
