"""Aggregate plugs: the sum of other plugs (which are then not reported on their own)."""

from dataclasses import dataclass

from senselink.config.fields import id_list
from senselink.config.schema import PlugSettings, PowerSettings
from senselink.config.settings import field_table, setting
from senselink.sources.kind import SourceKind


@dataclass(frozen=True)
class AggregatePlugSettings(PowerSettings):
    # The original accepted its base power keys here too; they have no effect.
    elements: tuple = setting(id_list, default=(), required=True, doc="Ids of the plugs summed")


class AggregateKind(SourceKind):
    name = "aggregate"
    doc = "Sum of other plugs"
    plug_settings = AggregatePlugSettings
    plug_fields = field_table(AggregatePlugSettings, besides=PlugSettings)
