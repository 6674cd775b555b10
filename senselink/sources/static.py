"""Static plugs: a fixed power, C{min_watts + on_fraction * (max_watts - min_watts)}."""

from senselink.config.schema import POWER_FIELDS, PowerSettings
from senselink.power import PowerModel
from senselink.sources.kind import SourceKind


class StaticKind(SourceKind):
    name = "static"
    doc = "Fixed power values"
    plug_settings = PowerSettings
    plug_fields = POWER_FIELDS

    def initial(self, plug):
        return PowerModel.from_settings(plug.settings).static_watts(), True
