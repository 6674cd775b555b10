"""YAML config -> validated, typed config.

The format is the original SenseLink's: a top-level C{sources} list of
single-key mappings (C{static:}, C{mutable:}, C{hass:}, C{mqtt:},
C{aggregate:}, ...), each with C{plugs}, a list of single-key mappings from
plug id to plug settings. Every error names the file, the line and the key,
and says what was expected. Nothing listens before the config is valid.
"""

import difflib
import ipaddress
import math
import os
import re
from dataclasses import dataclass, field

import yaml

from senselink.plugs import derive_device_id, derive_mac

DEFAULT_PATH = "/etc/senselink/config.yml"
MAX_REPORTED_PLUGS = 20


class ConfigError(Exception):
    """The config is unusable. C{str()} gives one line per problem, each with file:line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


# ---------------------------------------------------------------- YAML with lines


class _Map(dict):
    """A mapping that remembers the line of itself, of each key, and raw scalar text."""

    line = 0

    def __init__(self):
        super().__init__()
        self.lines = {}
        self.raw = {}


class _List(list):
    line = 0

    def __init__(self):
        super().__init__()
        self.lines = []


class _PureLoader(yaml.SafeLoader):
    """Safe YAML with line numbers (our constructors below)."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same, parsed by libyaml when PyYAML has it (~10x faster: 15 ms instead of
    130 ms for a 200-plug config). Its error messages are terser ("found character
    that cannot start any token" for a tab), so errors are reported by L{_PureLoader}."""


def _construct_map(loader, node):
    result = _Map()
    result.line = node.start_mark.line + 1
    yield result
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark) from None
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.ScalarNode):
            result.raw[key] = value_node.value


def _construct_list(loader, node):
    result = _List()
    result.line = node.start_mark.line + 1
    yield result
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.lines.append(item.start_mark.line + 1)


for _loader in (_PureLoader, _Loader):
    _loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
    _loader.add_constructor("tag:yaml.org,2002:seq", _construct_list)


# ---------------------------------------------------------------- error context


class _Where:
    """File, line and key path of the value being checked; collects problems."""

    def __init__(self, path, problems, line=0, keys=(), secrets=None):
        self.path = path
        self.problems = problems
        self.line = line
        self.keys = keys
        self.secrets = [] if secrets is None else secrets   # (line, key name) of secret values

    def child(self, key, line=None):
        return _Where(self.path, self.problems, line or self.line, self.keys + (key,), self.secrets)

    def at(self, container, key):
        """The context of C{container[key]}, with that key's line when known."""
        if isinstance(container, _Map):
            line = container.lines.get(key, container.line)
        elif isinstance(container, _List) and isinstance(key, int) and key < len(container.lines):
            line = container.lines[key]
        else:
            line = self.line
        return self.child(key, line)

    @property
    def name(self):
        out = ""
        for key in self.keys:
            out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
        return out or "(top level)"

    def error(self, message):
        self.problems.append(f"{self.path}:{self.line}: {self.name}: {message}")


class Invalid(ValueError):
    """Raised by field types; the message says what was expected."""


# ---------------------------------------------------------------- field types

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute_env(text: str) -> str:
    """Replace C{${NAME}} with the environment variable NAME."""
    def replace(match):
        name = match.group(1)
        if name not in os.environ:
            raise Invalid(f"environment variable {name} is not set (used as ${{{name}}})")
        return os.environ[name]
    return _ENV.sub(replace, text)


def _describe(value):
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return f"a mapping {dict(value)!r}"
    if isinstance(value, list):
        return f"a list {list(value)!r}"
    return f"{value!r} ({type(value).__name__})"


def _redact(message, value):
    """C{message} without the text of C{value} (a secret that failed its type check).

    Converters describe a wrong value with its repr ("expected text, got a list
    ['...']"); for secret fields every repr of the value and of what it holds
    (mapping values and list items, not mapping keys) is replaced by C{***}.
    """
    hidden = []

    def collect(item):
        if isinstance(item, dict):
            hidden.append(repr(dict(item)))
            for inner in item.values():
                collect(inner)
        elif isinstance(item, list):
            hidden.append(repr(list(item)))
            for inner in item:
                collect(inner)
        elif isinstance(item, str):
            hidden.append(repr(item))
            if len(item) >= 4:
                hidden.append(item)
    collect(value)
    for text in sorted(set(hidden), key=len, reverse=True):
        message = message.replace(text, "***")
    return message


def _maybe_env(value):
    if isinstance(value, str) and "${" in value:
        return substitute_env(value)
    return value


class Field:
    """One config key: its type check, default and documentation."""

    def __init__(self, convert, default=None, required=False, doc="", secret=False):
        self.convert = convert
        self.default = default
        self.required = required
        self.doc = doc
        self.secret = secret      # a password or token: never logged, file permissions checked


def number(minimum=None, maximum=None, above=None):
    def convert(value, raw=None):
        value = _maybe_env(value)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise Invalid(f"expected a number, got {_describe(value)}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(f"expected a number, got {_describe(value)}")
        if not math.isfinite(value):
            raise Invalid(f"expected a finite number, got {value!r}")
        if minimum is not None and value < minimum:
            raise Invalid(f"expected a number >= {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise Invalid(f"expected a number <= {maximum}, got {value!r}")
        if above is not None and value <= above:
            raise Invalid(f"expected a number > {above}, got {value!r}")
        return value
    return convert


def integer(minimum=None, maximum=None):
    check = number(minimum, maximum)

    def convert(value, raw=None):
        value = check(value)
        if value != int(value):
            raise Invalid(f"expected a whole number, got {value!r}")
        return int(value)
    return convert


def string(value, raw=None):
    if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
        raise Invalid(f"expected text, got {_describe(value)}")
    return substitute_env(str(value))


def boolean(value, raw=None):
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {_describe(value)}")
    return value


def state_value(value, raw=None):
    """A state to compare with: the text as written, so unquoted on/off stay 'on'/'off'."""
    if isinstance(value, (list, dict)) or value is None:
        raise Invalid(f"expected a state value such as on or off, got {_describe(value)}")
    if isinstance(value, bool) and raw is not None:
        return raw
    if isinstance(value, bool):
        return "on" if value else "off"
    return substitute_env(str(value)) if isinstance(value, str) else str(raw if raw is not None else value)


_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


def mac(value, raw=None):
    if not isinstance(value, str) or not _MAC.match(value):
        # YAML 1.1 reads some unquoted MACs as sexagesimal numbers: use the text as written.
        if raw is not None and _MAC.match(str(raw)):
            value = raw
        else:
            raise Invalid(f"expected a MAC address like 53:75:31:F6:4B:01, got {_describe(value)}")
    return value.replace("-", ":").upper()


_DEVICE_ID = re.compile(r"^[0-9A-Fa-f]{40}$")


def device_id(value, raw=None):
    if not isinstance(value, str) or not _DEVICE_ID.match(value):
        raise Invalid(f"expected 40 hexadecimal digits, got {_describe(value)}")
    return value.upper()


def id_list(value, raw=None):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise Invalid(f"expected a list of plug ids, got {_describe(value)}")
    out = []
    for item in value:
        if not isinstance(item, (str, int)) or isinstance(item, bool):
            raise Invalid(f"expected plug ids, got {_describe(item)} in the list")
        out.append(str(item))
    return out


def power_curve(value, raw=None):
    if not isinstance(value, list) or len(value) < 2:
        raise Invalid("expected a list of at least two [input, watts] points")
    points = []
    check = number()
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            raise Invalid(f"expected [input, watts] pairs, got {_describe(point)}")
        x, w = check(point[0]), check(point[1])
        if w < 0:
            raise Invalid(f"watts must not be negative, got {w!r}")
        points.append((float(x), float(w)))
    xs = [x for x, _ in points]
    if sorted(set(xs)) != xs:
        raise Invalid("power_curve inputs must be strictly increasing")
    return points


def host(value, raw=None):
    value = string(value)
    if not value or any(c.isspace() for c in value):
        raise Invalid(f"expected a host name or IP address, got {value!r}")
    return value


def string_map(value, raw=None):
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping of names to text, got {_describe(value)}")
    return {str(k): string(v) for k, v in value.items()}


# ---------------------------------------------------------------- schema

PLUG_FIELDS = {
    "alias": Field(string, doc="Name Sense shows (default: the plug id)"),
    "mac": Field(mac, doc="MAC address (default: derived from the plug id, stable)"),
    "device_id": Field(device_id, doc="40 hex digits (default: derived from the MAC)"),
    "skip_rate": Field(integer(minimum=0), default=0,
                       doc="Answer one Sense request, then skip this many"),
    "voltage": Field(number(above=0), default=120.0, doc="Volts reported (current = power / voltage)"),
}

# Keys every source kind of the original accepted on plugs (its DataSource base class).
POWER_FIELDS = {
    "min_watts": Field(number(minimum=0), default=0.0, doc="Watts at the lowest setting"),
    "max_watts": Field(number(minimum=0), default=0.0, doc="Watts when fully on"),
    "off_usage": Field(number(minimum=0), doc="Watts when off (default: min_watts)"),
    "on_fraction": Field(number(minimum=0, maximum=1), default=1.0,
                         doc="Static plugs: fraction of the min..max range drawn"),
}

# Keys of plugs whose value comes from a state/attribute/power reading.
MODEL_FIELDS = {
    **POWER_FIELDS,
    "attribute_min": Field(number(), default=0.0, doc="Attribute value that means min_watts"),
    "attribute_max": Field(number(), doc="Attribute value that means max_watts"),
    "power_curve": Field(power_curve, doc="[[input, watts], ...] interpolated piecewise-linearly"),
    "on_state_value": Field(state_value, doc="State that means on"),
    "off_state_value": Field(state_value, default="off", doc="State that means off"),
    "timeout_duration": Field(number(above=0), doc="Seconds without update before off_usage"),
}


@dataclass
class PlugConfig:
    id: str
    kind: str
    options: dict
    line: int
    source: "SourceConfig" = None
    mac_derived: bool = False

    def __getitem__(self, key):
        return self.options[key]

    def get(self, key, default=None):
        value = self.options.get(key)
        return default if value is None else value


@dataclass
class SourceConfig:
    kind: str
    options: dict
    plugs: list
    line: int
    index: int

    def get(self, key, default=None):
        value = self.options.get(key)
        return default if value is None else value


@dataclass
class Config:
    path: str
    sources: list
    plugs: dict            # plug id -> PlugConfig, in config order
    options: dict = field(default_factory=dict)   # validated top-level keys
    warnings: list = field(default_factory=list)
    secrets: list = field(default_factory=list)   # (line, key) of secrets written in the file

    @property
    def target(self):
        return self.options.get("target")

    def aggregate_of(self, plug_id):
        """The id of the aggregate that holds C{plug_id}, or None."""
        for plug in self.plugs.values():
            if plug.kind == "aggregate" and plug_id in plug.options["elements"]:
                return plug.id
        return None

    def reported(self):
        held = {e for p in self.plugs.values() if p.kind == "aggregate" for e in p.options["elements"]}
        return [p for p in self.plugs.values() if p.id not in held]


# Top-level keys. Other modules add theirs (web, device, ...) with add_top_level().
TOP_LEVEL = {
    "sources": Field(None, required=True, doc="List of sources, each with its plugs"),
    "target": Field(host, doc="Send replies to this host (at the requester's port)"),
    "state_file": Field(string, default="senselink-state.json",
                        doc="File keeping the plugs' energy counters across restarts "
                            "(relative paths are in the state directory)"),
}


def add_top_level(name, spec: Field):
    TOP_LEVEL[name] = spec


def _suggest(key, known):
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_fields(mapping, fields, where: _Where, what: str) -> dict:
    """Validate C{mapping} against C{fields}; unknown keys and bad values are problems."""
    out = {}
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        where.error(f"expected a mapping of {what} settings, got {_describe(mapping)}")
        return out
    raw = mapping.raw if isinstance(mapping, _Map) else {}
    for key, value in mapping.items():
        here = where.at(mapping, key)
        spec = fields.get(key)
        if spec is None:
            here.error(f"unknown {what} key{_suggest(key, fields)}; known keys: "
                       f"{', '.join(sorted(fields))}")
            continue
        if spec.convert is None:
            out[key] = value
            continue
        if value is None and not spec.required:
            out[key] = spec.default
            continue
        try:
            out[key] = spec.convert(value, raw.get(key))
        except Invalid as e:
            here.error(_redact(str(e), value) if spec.secret else str(e))
            continue
        if spec.secret and isinstance(value, str) and "${" not in value:
            where.secrets.append((here.line, here.name))
        if spec.secret and isinstance(value, dict):   # a mapping of secrets, e.g. headers
            for sub, text in value.items():
                if sub in getattr(spec, "secret_keys", value) and isinstance(text, str) \
                        and "${" not in text:
                    inner = here.at(value, sub)
                    where.secrets.append((inner.line, inner.name))
    for key, spec in fields.items():
        if key not in mapping:
            if spec.required:
                where.error(f"missing required key {key!r} ({spec.doc})")
            else:
                out[key] = spec.default
    return out


class SourceKind:
    """A kind of source: its config keys, checks, and the service that runs it.

    Subclasses (one per module under L{senselink.sources}) set C{name},
    C{source_fields} and C{plug_fields}, may extend L{check}, and implement
    L{make_service}.
    """

    name = ""
    source_fields = {}
    plug_fields = {}
    doc = ""

    def check(self, source: SourceConfig, where: _Where):
        """Cross-key checks of one source and its plugs; report with C{where.error}."""

    def make_service(self, source: SourceConfig, plugs, clock):
        """An IService feeding C{plugs} (a PlugSet), or None when nothing needs to run."""
        return None


def _single_key(item, where: _Where, what):
    if not isinstance(item, dict) or len(item) != 1:
        where.error(f"expected a single-key mapping like '- {what}: ...', got {_describe(item)}")
        return None, None
    return next(iter(item.items()))


# Modules that register top-level keys with add_top_level() when imported.
EXTENSIONS = ("senselink.guard", "senselink.webconfig", "senselink.strip")


def _load_extensions():
    import importlib
    for name in EXTENSIONS:
        importlib.import_module(name)


def parse(document, path="<config>", kinds=None) -> Config:
    """Validate an already-loaded YAML document (as produced by L{load})."""
    _load_extensions()
    if kinds is None:
        from senselink.sources import KINDS as kinds
    problems = []
    top = _Where(path, problems, getattr(document, "line", 1))
    if not isinstance(document, dict):
        top.error(f"expected a mapping with a 'sources' list, got {_describe(document)}")
        raise ConfigError(problems)
    options = check_fields(document, TOP_LEVEL, top, "top-level")
    sources_doc = document.get("sources")
    sources, plugs = [], {}
    if "sources" in document and not isinstance(sources_doc, list):
        top.at(document, "sources").error(
            f"expected a list of sources (- static: ...), got {_describe(sources_doc)}")
        sources_doc = []
    for index, item in enumerate(sources_doc or []):
        here = top.at(document, "sources").at(sources_doc, index)
        kind_name, body = _single_key(item, here, "static")
        if kind_name is None:
            continue
        here = here.at(item, kind_name)
        kind = kinds.get(str(kind_name).lower())
        if kind is None:
            here.error(f"unknown source kind{_suggest(kind_name, kinds)}; known kinds: "
                       f"{', '.join(sorted(kinds))}")
            continue
        fields = dict(kind.source_fields)
        fields["plugs"] = Field(None, required=True, doc="list of plugs")
        source_options = check_fields(body, fields, here, f"{kind.name} source")
        plug_list = source_options.pop("plugs", None)
        source = SourceConfig(kind.name, source_options, [], getattr(body, "line", here.line), index)
        if isinstance(body, dict) and "plugs" in body and not isinstance(plug_list, list):
            here.at(body, "plugs").error(
                f"expected a list of plugs (- my_plug: ...), got {_describe(plug_list)}")
            plug_list = []
        plug_fields = {**PLUG_FIELDS, **kind.plug_fields}
        for p_index, plug_item in enumerate(plug_list or []):
            p_here = here.at(body, "plugs").at(plug_list, p_index)
            plug_id, plug_body = _single_key(plug_item, p_here, "my_plug")
            if plug_id is None:
                continue
            plug_id = str(plug_id)
            p_here = p_here.at(plug_item, plug_id)
            if plug_body is None:
                p_here.error("expected the plug's settings under its id, got nothing")
                continue
            plug_options = check_fields(plug_body, plug_fields, p_here, f"{kind.name} plug")
            plug = PlugConfig(plug_id, kind.name, plug_options,
                              getattr(plug_body, "line", p_here.line), source)
            plug._where = p_here
            if plug_id in plugs:
                p_here.error(f"plug id {plug_id!r} is already used at line {plugs[plug_id].line}")
                continue
            plugs[plug_id] = plug
            source.plugs.append(plug)
        source._where = here
        sources.append(source)
    for source in sources:
        kinds[source.kind].check(source, source._where)
    warnings = []
    _check_identity(plugs, warnings)
    _check_aggregates(plugs, problems)
    if problems:
        raise ConfigError(problems)
    config = Config(path, sources, plugs, options, warnings, list(top.secrets))
    reported = config.reported()
    if len(reported) > MAX_REPORTED_PLUGS:
        warnings.append(f"{path}: {len(reported)} plugs are reported to Sense; "
                        f"Sense shows about {MAX_REPORTED_PLUGS} at most")
    return config


def _check_identity(plugs, warnings):
    macs = {}
    for plug in plugs.values():
        if plug.options.get("mac") is None:
            plug.options["mac"] = derive_mac(plug.id)
            plug.mac_derived = True
            warnings.append(f"plug {plug.id!r} has no mac: using {plug.options['mac']}, derived from "
                            f"its id (stable across restarts; set 'mac' to choose one)")
        if plug.options.get("device_id") is None:
            plug.options["device_id"] = derive_device_id(plug.options["mac"])
        mac_value = plug.options["mac"]
        if mac_value in macs:
            other = macs[mac_value]
            plug._where.at(plug.options, "mac").error(
                f"plugs {other.id!r} (line {other.line}) and {plug.id!r} (line {plug.line}) "
                f"have the same MAC {mac_value}")
        else:
            macs[mac_value] = plug


def _check_aggregates(plugs, problems):
    holder = {}
    for plug in plugs.values():
        if plug.kind != "aggregate":
            continue
        for element in plug.options.get("elements") or ():
            where = plug._where.child("elements")
            if element not in plugs:
                where.error(f"aggregate {plug.id!r} names unknown plug {element!r}"
                            f"{_suggest(element, plugs)}")
            elif element == plug.id:
                where.error(f"aggregate {plug.id!r} contains itself")
            elif element in holder:
                where.error(f"plug {element!r} is in two aggregates: {holder[element]!r} "
                            f"and {plug.id!r}")
            else:
                holder[element] = plug.id
    # Cycles: follow each plug's chain of holders.
    reported_cycles = set()
    for start in holder:
        seen = [start]
        current = holder.get(start)
        while current is not None:
            if current in seen:
                cycle = seen[seen.index(current):]
                key = frozenset(cycle)
                if key not in reported_cycles:
                    reported_cycles.add(key)
                    plug = plugs[current]
                    plug._where.child("elements").error(
                        "aggregates form a cycle: " + " -> ".join(cycle + [current]))
                break
            seen.append(current)
            current = holder.get(current)


def _yaml(text):
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        if _Loader is _PureLoader:
            raise
    return yaml.load(text, Loader=_PureLoader)   # for its error message (or if it accepts)


def load_text(text, path="<config>", kinds=None) -> Config:
    try:
        document = _yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([f"{path}:{line}: not valid YAML: {e.problem or e}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML: {e}"]) from None
    return parse(document, path, kinds)


def load(path, kinds=None) -> Config:
    """Read and validate the config file at C{path}; raise L{ConfigError}."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror or e}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: not UTF-8 text ({e.reason} at byte {e.start})"]) from None
    config = load_text(text, path, kinds)
    _check_permissions(config)
    return config


def _check_permissions(config):
    """Warn when a config that holds secrets (not from ${ENV}) is readable by other users."""
    if not config.secrets:
        return
    try:
        mode = os.stat(config.path).st_mode
    except OSError:
        return
    if mode & 0o004:
        line, key = config.secrets[0]
        config.warnings.append(
            f"{config.path} holds secrets ({key} at line {line}) and is readable by other users: "
            f"chmod o-r it, or take the secret from the environment with ${{NAME}}")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False
