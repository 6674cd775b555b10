"""Source kinds: where plugs get their watts.

Each module defines one L{senselink.config.SourceKind}; L{KINDS} maps the
config name (the key under C{sources:}) to it. Sources that connect to
something run as an L{twisted.application.service.IService} child of the
daemon's service tree.

A kind's module is imported the first time a config uses it, so a daemon
without Home Assistant plugs never loads Autobahn (start-up time and memory).
"""

import importlib
from collections.abc import Mapping

# config name -> (module, SourceKind class)
REGISTRY = {
    "static": ("senselink.sources.static", "StaticKind"),
    "mutable": ("senselink.sources.mutable", "MutableKind"),
    "aggregate": ("senselink.sources.aggregate", "AggregateKind"),
    "hass": ("senselink.sources.hass", "HassKind"),
    "mqtt": ("senselink.sources.mqtt", "MqttKind"),
    "http": ("senselink.sources.http", "HttpKind"),
}


class LazyKinds(Mapping):
    """A read-only mapping from kind name to SourceKind, importing each kind on first use."""

    def __init__(self, registry):
        self._registry = dict(registry)
        self._loaded = {}

    def __getitem__(self, name):
        kind = self._loaded.get(name)
        if kind is None:
            module, cls = self._registry[name]
            kind = self._loaded[name] = getattr(importlib.import_module(module), cls)()
        return kind

    def __iter__(self):
        return iter(self._registry)

    def __len__(self):
        return len(self._registry)

    def __contains__(self, name):
        return name in self._registry

    def __setitem__(self, name, kind):
        """Register an already-built kind (embedding programs and tests)."""
        self._registry[name] = None
        self._loaded[name] = kind

    def pop(self, name, *default):
        self._loaded.pop(name, None)
        return self._registry.pop(name, *default)


KINDS = LazyKinds(REGISTRY)


def default_kinds():
    """A new mapping of the built-in kinds, each imported on first use."""
    return LazyKinds(REGISTRY)
