"""Experiment, not the daemon: our daemon with two ingest proposals applied from outside.

Everything is ``twistd senselink`` (same options, same service tree); before
the service is made, this module

1. gives twisted-mqtt's modules a logger that honours our level threshold
   (``senselink.log.Logger``): the library logs a DEBUG event for every
   PUBLISH it receives, which twistd's log observer formats and writes to
   the log whatever ``--log-level`` says (proposal "library debug events");
2. keeps the day boundaries of the energy counters: ``PlugEnergy._add``
   computes the local date and the next local midnight (two ``datetime``
   constructions) on every plug change; when the interval lies inside the
   day computed last time, the energy is booked on that day directly
   (proposal "energy day cache").

Used by ``ingest.py --daemons ours,exp-ingest`` (and run.py) to measure what the changes
would gain before anyone changes senselink/.
"""

from datetime import datetime, time as dtime

from senselink import energy as _energy
from senselink.log import Logger
from senselink.tap import Options  # noqa: F401  (twistd reads it from this module)
from senselink.tap import makeService as _makeService


def _quiet_library_loggers():
    import importlib
    for name in ("mqtt.pdu", "mqtt.client.base", "mqtt.client.pubsubs", "mqtt.client.publisher",
                 "mqtt.client.factory", "mqtt.client.subscriber"):
        module = importlib.import_module(name)
        module.log = Logger(namespace="mqtt")


_original_add = _energy.PlugEnergy._add
_days = {}   # tz -> (day start, next midnight, date) of the day computed last


def _add(self, start, end, watts):
    known = _days.get(self.tz)
    if known is not None and known[0] <= start and end <= known[1]:
        self._book(known[2], watts * (end - start) / 3600.0)
        return
    _original_add(self, start, end, watts)
    moment = _energy._local(end, self.tz)
    first = datetime.combine(moment.date(), dtime(0), moment.tzinfo).timestamp()
    _days[self.tz] = (first, _energy._next_midnight(moment), moment.date())


def makeService(options):
    _quiet_library_loggers()
    _energy.PlugEnergy._add = _add
    return _makeService(options)
