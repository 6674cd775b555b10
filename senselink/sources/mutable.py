"""Mutable plugs: an initial C{power}, changed at run time through the service's API."""

from senselink.config.fields import Field
from senselink.config.schema import POWER_FIELDS, WATTS
from senselink.sources.kind import SourceKind


class MutableKind(SourceKind):
    name = "mutable"
    doc = "Power set at run time (Python API, web API)"
    plug_fields = {
        **POWER_FIELDS,
        "power": Field(WATTS, default=0.0, doc="Initial watts"),
    }

    def initial(self, plug):
        return float(plug.options["power"]), None
