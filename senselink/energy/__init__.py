"""Energy: counters that integrate each plug's watts (L{counters}), the state file
that keeps them across restarts (L{statefile}), and its service (L{service})."""

from senselink.energy.counters import KEEP_DAYS, EnergyMeter, PlugEnergy
from senselink.energy.service import (DEFAULT_STATE_FILE, SAVE_INTERVAL, EnergyService,
                                      state_directory, state_file_path)
from senselink.energy.statefile import (MAX_STATE_BYTES, MAX_WH, STATE_VERSION, StateFileError,
                                        check_plug_state, parse_state, read_state, write_state)

__all__ = ("DEFAULT_STATE_FILE", "EnergyMeter", "EnergyService", "KEEP_DAYS", "MAX_STATE_BYTES",
           "MAX_WH", "PlugEnergy", "SAVE_INTERVAL", "STATE_VERSION", "StateFileError",
           "check_plug_state", "parse_state", "read_state", "state_directory", "state_file_path",
           "write_state")
