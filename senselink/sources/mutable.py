"""Mutable plugs: an initial C{power}, changed at run time through the service's API."""

from dataclasses import dataclass

from senselink.config.fields import boolean
from senselink.config.schema import WATTS, PlugSettings, PowerSettings
from senselink.config.settings import field_table, setting
from senselink.power import PowerModel
from senselink.sources.kind import SourceKind


@dataclass(frozen=True)
class MutablePlugSettings(PowerSettings):
    power: float = setting(WATTS, default=0.0, doc="Initial watts")
    restore: bool = setting(boolean, default=True,
                            doc="Start from the last value set at run time (kept in the state "
                                "file) rather than from power")

    settable = True

    def switch_watts(self, on: bool) -> float:
        """The watts of switching on (C{max_watts} when set, else C{power}) or off
        (C{off_usage}, default C{min_watts})."""
        if on:
            return self.max_watts if self.max_watts > 0 else self.power
        return PowerModel.from_settings(self).off_usage


class MutableKind(SourceKind):
    name = "mutable"
    doc = "Power set at run time (Python API, web API)"
    plug_settings = MutablePlugSettings
    plug_fields = field_table(MutablePlugSettings, besides=PlugSettings)

    def initial(self, plug):
        return plug.settings.power, None
