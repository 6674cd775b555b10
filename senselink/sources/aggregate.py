"""Aggregate plugs: the sum of other plugs (which are then not reported on their own)."""

from senselink.config.fields import Field, id_list
from senselink.config.schema import POWER_FIELDS
from senselink.sources.kind import SourceKind


class AggregateKind(SourceKind):
    name = "aggregate"
    doc = "Sum of other plugs"
    # The original accepted its base power keys here too; they have no effect.
    plug_fields = {
        **POWER_FIELDS,
        "elements": Field(id_list, required=True, doc="Ids of the plugs summed"),
    }

