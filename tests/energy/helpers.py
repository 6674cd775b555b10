"""Plugs, a meter on a task.Clock and log capture, shared by the energy tests."""

from datetime import datetime, timezone

from twisted.logger import formatEvent, globalLogPublisher

from senselink.energy import EnergyMeter
from senselink.plughub import PlugHub
from senselink.plugs import AggregatePlug, Plug, PlugSet

UTC = timezone.utc


def at(*args):
    """Epoch seconds of a UTC date and time."""
    return datetime(*args, tzinfo=UTC).timestamp()


def plug(plug_id, clock, watts=0.0, cls=Plug):
    return cls(plug_id, mac="53:75:31:00:00:%02X" % (len(plug_id) % 256),
               device_id="0" * 40, kind="mutable", clock=clock, watts=watts)


def setup_plugs(clock, start=None):
    """heater (120 W), lamp, tv, and media (an aggregate of tv), counted by a meter."""
    if start is not None:
        clock.advance(start)
    heater = plug("heater", clock, 120.0)
    lamp = plug("lamp", clock, 0.0)
    tv = plug("tv", clock, 0.0)
    media = plug("media", clock, cls=AggregatePlug)
    media.add(tv)
    plugs = PlugSet([heater, lamp, tv, media])
    meter = EnergyMeter(clock, tz=UTC)
    PlugHub(plugs).subscribe(changed=meter.changed, replaced=meter.watch)
    return plugs, meter


def capture_log(testcase):
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def texts(events):
    return [formatEvent(e) for e in events
            if e.get("log_namespace", "").startswith("senselink.energy")]
