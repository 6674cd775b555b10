"""Source kinds: where plugs get their watts.

Each module defines one kind (an L{ISourceKind<senselink.sources.kind.ISourceKind>});
L{default_kinds} maps the config name (the key under C{sources:}) to it.
Sources that connect to something run as an
L{twisted.application.service.IService} child of the daemon's service tree.

A kind's module is imported the first time a config uses it, so a daemon
without Home Assistant plugs never loads Autobahn (start-up time and memory).
"""

import importlib
from collections.abc import Mapping
from types import MappingProxyType

# config name -> (module, SourceKind class)
REGISTRY = MappingProxyType({
    "static": ("senselink.sources.static", "StaticKind"),
    "mutable": ("senselink.sources.mutable", "MutableKind"),
    "aggregate": ("senselink.sources.aggregate", "AggregateKind"),
    "hass": ("senselink.sources.hass", "HassKind"),
    "mqtt": ("senselink.sources.mqtt", "MqttKind"),
    "http": ("senselink.sources.http", "HttpKind"),
})


class LazyKinds(Mapping):
    """A read-only mapping from kind name to kind, importing each kind on first use.

    @param registry: name -> (module, class name) of the kinds imported on demand.
    @param extra: name -> an already-built kind (embedding programs and tests);
        these win over C{registry}.
    """

    def __init__(self, registry, extra=None):
        self._registry = dict(registry)
        self._loaded = dict(extra or {})
        for name in self._loaded:
            self._registry.setdefault(name, None)

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


def default_kinds(extra=None) -> LazyKinds:
    """A new mapping of the built-in kinds, plus C{extra} (name -> kind), each made on first use."""
    return LazyKinds(REGISTRY, extra)
