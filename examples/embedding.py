"""Embedding SenseLink in another Twisted program.

Builds the SenseLink service from a config file, attaches it to the
program's own MultiService, and changes a mutable plug's power from the
program's own code: here a LoopingCall that follows a made-up load pattern.

    python examples/embedding.py examples/demo.yml [port]

The plug id "Heater" is a mutable plug of examples/demo.yml.
"""

import sys

from twisted.application.service import MultiService
from twisted.internet import reactor, task
from twisted.logger import globalLogBeginner, textFileLogObserver

from senselink.config import ConfigError
from senselink.service import makeService


def main(config_path, port=9999):
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    app = MultiService()                      # the host program's own service tree
    try:
        senselink = makeService(config_path, port=port)
    except ConfigError as e:
        sys.exit(f"invalid config:\n{e}")
    senselink.setServiceParent(app)

    steps = iter([0, 750, 1500, 750])

    def follow_thermostat():
        watts = next(steps, 0)
        senselink.set_power("Heater", watts)  # KeyError/TypeError/ValueError on misuse

    heater = task.LoopingCall(follow_thermostat)

    def start():
        app.startService()
        heater.start(5.0)

    def stop():
        if heater.running:
            heater.stop()
        return app.stopService()

    app.privilegedStartService()
    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 9999)
