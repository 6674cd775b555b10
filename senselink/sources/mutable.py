"""Mutable plugs: an initial C{power}, changed at run time through the service's API."""

from dataclasses import dataclass

from senselink.config.schema import WATTS, PlugSettings, PowerSettings
from senselink.config.settings import field_table, setting
from senselink.sources.kind import SourceKind


@dataclass(frozen=True)
class MutablePlugSettings(PowerSettings):
    power: float = setting(WATTS, default=0.0, doc="Initial watts")


class MutableKind(SourceKind):
    name = "mutable"
    doc = "Power set at run time (Python API, web API)"
    plug_settings = MutablePlugSettings
    plug_fields = field_table(MutablePlugSettings, besides=PlugSettings)

    def initial(self, plug):
        return plug.settings.power, None
