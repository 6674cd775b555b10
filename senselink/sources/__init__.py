"""Source kinds: where plugs get their watts.

Each module defines one L{senselink.config.SourceKind}; L{KINDS} maps the
config name (the key under C{sources:}) to it. Sources that connect to
something run as an L{twisted.application.service.IService} child of the
daemon's service tree.
"""

from senselink.sources.aggregate import AggregateKind
from senselink.sources.hass import HassKind
from senselink.sources.http import HttpKind
from senselink.sources.mqtt import MqttKind
from senselink.sources.mutable import MutableKind
from senselink.sources.static import StaticKind

KINDS = {kind.name: kind for kind in (StaticKind(), MutableKind(), AggregateKind(), HassKind(),
                                      MqttKind(), HttpKind())}
