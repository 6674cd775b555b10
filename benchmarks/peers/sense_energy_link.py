"""Run sense_energy 0.15.0's SenseLink (Home Assistant's emulated_kasa engine) on 127.0.0.1.

Usage: python sense_energy_link.py PLUGS.json PORT

PLUGS.json is a list of ``{"alias", "mac", "watts"}``. Like Home Assistant's
emulated_kasa integration, the server gets a callable returning the
``PlugInstance`` objects. ``SenseLink.start`` always listens on 0.0.0.0; this
runner opens the package's ``SenseLinkServerProtocol`` the same way on the
loopback address instead. The request path is the package's code, untouched.
"""

import asyncio
import json
import sys

from sense_energy.plug_instance import PlugInstance
from sense_energy.sense_link import SenseLinkServerProtocol


async def serve(plugs, port):
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: SenseLinkServerProtocol(lambda: plugs),
                                        local_addr=("127.0.0.1", port))
    await loop.create_future()  # until the process is stopped


def main():
    plugs_path, port = sys.argv[1], int(sys.argv[2])
    with open(plugs_path) as f:
        plugs = [PlugInstance(p["mac"], alias=p["alias"], mac=p["mac"], power=p["watts"])
                 for p in json.load(f)]
    asyncio.run(serve(plugs, port))


if __name__ == "__main__":
    main()
