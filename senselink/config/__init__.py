"""YAML config -> validated, typed config.

    yamlmarks   YAML with line marks (libyaml when available)
    scalars     numbers and text with their bounds declared (Bounded, plain_text, name)
    fields      Field and the converters (mac, state_power, power_curve, ...)
    settings    typed settings classes: setting(), field_table(), build()
    where       file/line/key context of problems; ConfigError
    sections    the optional top-level sections (web, device, rate_limit, ...)
    schema      the top-level keys and the keys every plug accepts
    model       Config, SourceConfig, PlugConfig
    loading     load, load_text, parse and the checks across keys

The source kinds' interface and base class (ISourceKind, SourceKind) live
with the kinds, in L{senselink.sources.kind}; they are re-exported here too.

Every error names the file, the line and the key, and says what was expected.
"""

from senselink.config.fields import (Field, Invalid, describe_value, redact, boolean, device_id,
                                     host, id_list, integer, keypath, keypath_list, mac, number,
                                     power_curve, state_power, state_value, string, string_map,
                                     substitute_env)
from senselink.config.loading import (DEFAULT_PATH, MAX_REPORTED_PLUGS, check_fields, load,
                                      load_text, parse)
from senselink.config.model import Config, PlugConfig, SourceConfig
from senselink.config.schema import (MEASURED_POWER_KEYS, MODEL_FIELDS, PLUG_FIELDS, POWER_FIELDS,
                                     READING_FIELDS, TOP_LEVEL, check_power_paths, check_states)
from senselink.config.sections import WebOptions
from senselink.config.where import ConfigError, Where
from senselink.config.yamlmarks import MarkedList, FastLoader, MarkedMap, PureLoader
from senselink.sources.kind import ISourceKind, SourceKind

__all__ = (
    "Config", "ConfigError", "DEFAULT_PATH", "Field", "ISourceKind", "Invalid",
    "MAX_REPORTED_PLUGS", "MEASURED_POWER_KEYS", "MODEL_FIELDS", "PLUG_FIELDS", "POWER_FIELDS", "PlugConfig", "READING_FIELDS", "SourceConfig", "SourceKind",
    "TOP_LEVEL", "WebOptions", "MarkedList", "FastLoader", "MarkedMap", "PureLoader", "Where", "describe_value",
    "redact", "boolean", "check_fields", "check_power_paths", "check_states", "device_id", "host",
    "id_list", "integer", "keypath", "keypath_list", "load", "load_text", "mac", "number",
    "parse", "power_curve", "state_power", "state_value", "string", "string_map",
    "substitute_env")
