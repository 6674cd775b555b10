"""Typed settings: frozen dataclasses whose fields declare their config key once.

A settings class lists its keys as dataclass fields made with L{setting}: the
type (the annotation), the converter with its bounds, the default and the
documentation sit together, and nowhere else. The loader validates a mapping
against L{field_table} of the class and builds the frozen instance; the rest
of the program reads attributes (C{settings.interval}), never option names.

    @dataclass(frozen=True)
    class HttpSourceSettings:
        url: str = setting(http_url, required=True, doc="URL to GET")
        interval: float = setting(number(1, 86400, unit=" s"), default=10.0, doc="...")
"""

import dataclasses
from types import MappingProxyType

from senselink.config.fields import Field

FIELD = "senselink.field"        # the key of a dataclass field's metadata holding its Field


def setting(convert, default=None, *, required=False, doc="", secret=False, secret_keys=None):
    """A field of a settings class: its L{Field} (converter, default, documentation)."""
    return declared(Field(convert, default, required, doc, secret, secret_keys))


def declared(spec: Field):
    """A field of a settings class for a L{Field} declared elsewhere (a top-level section).

    A secret (a password, a token, headers) is left out of the class's repr, so that
    no log line or traceback that shows settings shows it.
    """
    return dataclasses.field(default=spec.default, repr=not spec.secret,
                             metadata=MappingProxyType({FIELD: spec}))


def field_table(cls, besides=None) -> MappingProxyType:
    """The config keys of settings class C{cls} (and its bases): key -> L{Field}, in order;
    without those of the settings class C{besides} (e.g. the keys every plug has)."""
    skip = () if besides is None else field_table(besides)
    return MappingProxyType({f.name: f.metadata[FIELD] for f in dataclasses.fields(cls)
                             if FIELD in f.metadata and f.name not in skip})


def values(settings) -> tuple:
    """C{((key, value), ...)} of a settings instance: equal for equal settings, also of
    two classes made alike by L{from_table} (dataclass equality wants one class)."""
    return tuple((f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings))


def differences(old, new) -> list:
    """The keys, in name order, whose values differ between two settings of one class."""
    return sorted(f.name for f in dataclasses.fields(new) if FIELD in f.metadata
                  and getattr(old, f.name) != getattr(new, f.name))


def from_table(name, table, base=None):
    """A frozen settings class with the keys of C{table} (key -> L{Field}), extending the
    settings class C{base} (whose keys it leaves to it): for a kind that declares its keys
    as a table only."""
    inherited = () if base is None else field_table(base)
    return dataclasses.make_dataclass(
        name, [(key, object, declared(spec)) for key, spec in table.items()
               if key not in inherited],
        bases=() if base is None else (base,), frozen=True)


def build(cls, options: dict):
    """An instance of C{cls} from validated C{options} (keys it does not have are ignored;
    keys missing from C{options} take their declared defaults)."""
    table = field_table(cls)
    return cls(**{key: value for key, value in options.items() if key in table})
