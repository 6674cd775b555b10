"""Static plugs: a fixed power, C{min_watts + on_fraction * (max_watts - min_watts)}."""

from senselink.config.schema import POWER_FIELDS
from senselink.power import PowerModel
from senselink.sources.kind import SourceKind


class StaticKind(SourceKind):
    name = "static"
    doc = "Fixed power values"
    plug_fields = POWER_FIELDS

    def initial(self, plug):
        return PowerModel.from_options(plug.options).static_watts(), True
