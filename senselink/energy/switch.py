"""Which state file keeps the energy counters, changed at start and at reload:
L{StateFileSwitch}.

The running L{senselink.energy.service.EnergyService} (or none, with
C{state_file: false}) is replaced only when the file or the save interval
changes; a file that cannot be used is named as the reason and the old one
stays (L{StateFileSwitch.problem}); the old service saves to its file as it stops.
"""

from senselink.energy.service import EnergyService, configured_state_file
from senselink.energy.statefile import check_location
from senselink.log import Logger

log = Logger()


class StateFileSwitch:
    """The energy counters' state file service, made and replaced under C{parent}."""

    def __init__(self, parent, meter, clock, sections):
        """
        @param parent: the C{MultiService} the state file's service runs under.
        @param meter: the energy counters (an L{senselink.energy.counters.EnergyMeter}).
        @param sections: more sections of the file (C{name}, C{snapshot()}, C{restore()}).
        """
        self.parent = parent
        self.meter = meter
        self.clock = clock
        self.sections = tuple(sections)
        self.service = None        # the running EnergyService, or None

    def reconfigure(self, settings, starting=False):
        """Keep the counters in the file C{settings} name (or in memory only).

        @return: why the file could not be changed (the old one stays), or None.
        """
        path = configured_state_file(settings)
        interval = settings.state_save_interval
        old = self.service
        if old is not None and (old.path, old.save_interval) == (path, interval):
            return None
        if old is None and path is None:
            if starting:
                log.info("state_file is false: the energy counters are kept in memory only")
            return None
        problem = None if starting else self.problem(settings)
        if problem is not None:
            return problem
        if old is not None:
            old.disownServiceParent()            # saves to the old file
            self.service = None
        if path is None:
            self.meter.keep(False)
            log.info("state_file is false: the energy counters are kept in memory only")
            return None
        self.service = EnergyService(self.meter, path, self.clock, save_interval=interval,
                                     load=starting, configured=settings.state_file,
                                     sections=self.sections)
        self.service.setServiceParent(self.parent)
        if old is not None and old.path != path:
            log.info("Energy counters are kept in {path} from now on (was {old})",
                     path=path, old=old.path)
        return None

    def problem(self, settings):
        """Why the state file C{settings} name cannot be used (the running one stays),
        or None (it can, it is the running one, or there is none)."""
        path = configured_state_file(settings)
        if path is None or (self.service is not None and self.service.path == path):
            return None
        problem = check_location(path)
        return None if problem is None else f"{problem}; the counters stay where they were"

    def save_soon(self):
        """A value the file keeps changed: save within the service's short delay."""
        if self.service is not None:
            self.service.save_soon()
