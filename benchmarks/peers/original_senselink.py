"""Run the original SenseLink 2.2.1 (asyncio) on 127.0.0.1 for the benchmark.

Usage: python original_senselink.py CONFIG.yml PORT

The package's own ``python -m senselink -c CONFIG`` always listens on
0.0.0.0:9999; this runner builds the same ``SenseLink`` object the same way
(``create_instances`` from the YAML file, answering enabled, log level
WARNING as its CLI defaults to) and opens its own ``SenseLinkProtocol`` on the
loopback address and the given port instead. The request path is the
package's code, untouched.
"""

import asyncio
import logging
import sys

from senselink.senselink import SenseLink, SenseLinkProtocol


async def serve(server, port):
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    protocol = SenseLinkProtocol(server.instances, finished)
    protocol.should_respond = True
    protocol.target = server.target
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol,
                                                       local_addr=("127.0.0.1", port))
    try:
        await finished
    finally:
        transport.close()


def main():
    config_path, port = sys.argv[1], int(sys.argv[2])
    logging.basicConfig(level="WARNING")
    with open(config_path) as config:
        server = SenseLink(config, port=port)
        server.should_respond = True
        server.create_instances()
    asyncio.run(serve(server, port))


if __name__ == "__main__":
    main()
