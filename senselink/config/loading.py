"""Loading: YAML text -> document -> validated L{Config}.

The format is the original SenseLink's: a top-level C{sources} list of
single-key mappings (C{static:}, C{mutable:}, C{hass:}, C{mqtt:},
C{aggregate:}, ...), each with C{plugs}, a list of single-key mappings from
plug id to plug settings. Every error names the file, the line and the key,
and says what was expected. Nothing listens before the config is valid.
"""

import difflib
import os
from dataclasses import replace

import yaml

from senselink import sources as _sources
from senselink.config.fields import (ENV_REFERENCE, Field, Invalid, describe_value, name, redact,
                                     shown, substitute_env)
from senselink.config.model import Config, PlugConfig, SourceConfig
from senselink.config.publish import check_publish
from senselink.config.schema import (PLUG_FIELDS, TOP_LEVEL, DaemonSettings, ModelSettings,
                                     PlugSettings, PowerSettings, check_ranges, check_states)
from senselink.config.settings import build, field_table, from_table
from senselink.config.sections import DEFAULT_MAX_PLUG_WATTS
from senselink.config.where import ConfigError, Where
from senselink.config.yamlmarks import TooLarge, MarkedMap, read_yaml
from senselink.excerpt import clip
from senselink.plugs import derive_device_id, derive_mac
from senselink.regularfile import UnreadableFile, read_regular

DEFAULT_PATH = "/etc/senselink/config.yml"
# A config of 200 plugs is some tens of KB: anything above this is not one.
MAX_CONFIG_BYTES = 4 * 1024 * 1024
MAX_REPORTED_PLUGS = 20


def _suggest(key, known):
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def _secret_part(value, spec):
    """What an error message about a secret field's C{value} must not show.

    Of a mapping, only the values of its secret keys (a web section's
    C{token}, not its C{listen}); of text that names environment variables,
    what they hold (not the C{${NAME}} reference, which names no secret).
    """
    if isinstance(value, dict) and spec.secret_keys is not None:
        return [value[key] for key in spec.secret_keys if key in value]
    if isinstance(value, str) and "${" in value:
        held = [os.environ[name] for name in ENV_REFERENCE.findall(value) if name in os.environ]
        try:
            held.append(substitute_env(value))
        except Invalid:
            pass
        return held
    return value


def check_fields(mapping, fields, where: Where, what: str) -> dict:
    """Validate C{mapping} against C{fields}; unknown keys and bad values are problems."""
    out = {}
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        where.error(f"expected a mapping of {what} settings, got {describe_value(mapping)}")
        return out
    raw = mapping.raw if isinstance(mapping, MarkedMap) else {}
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
            if e.key is not None and isinstance(value, dict) and e.key in value:
                here = here.at(value, e.key)
            here.error(redact(str(e), _secret_part(value, spec)) if spec.secret else str(e))
            continue
        if spec.secret and isinstance(value, str) and "${" not in value:
            where.secrets.append((here.line, here.name))
        if spec.secret and isinstance(value, dict):   # a mapping of secrets, e.g. headers
            secret_keys = value if spec.secret_keys is None else spec.secret_keys
            for sub, text in value.items():
                if sub in secret_keys and isinstance(text, str) and "${" not in text:
                    inner = here.at(value, sub)
                    where.secrets.append((inner.line, inner.name))
    for key, spec in fields.items():
        if key not in mapping:
            if spec.required:
                where.error(f"missing required key {key!r} ({spec.doc})")
            else:
                out[key] = spec.default
    return out


def plug_id_text(key) -> str:
    """A plug id, a mapping key: a L{name} (a number key such as 1 is its text)."""
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        key = str(key)
    return name(key)


def _single_key(item, where: Where, what):
    if not isinstance(item, dict) or len(item) != 1:
        where.error(f"expected a single-key mapping like '- {what}: ...', got {describe_value(item)}")
        return None, None
    return next(iter(item.items()))


def parse(document, path="<config>", kinds=None) -> Config:
    """Validate an already-loaded YAML document (as produced by L{load})."""
    if kinds is None:
        kinds = _sources.default_kinds()
    problems = []
    top = Where(path, problems, getattr(document, "line", 1))
    if not isinstance(document, dict):
        top.error(f"expected a mapping with a 'sources' list, got {describe_value(document)}")
        raise ConfigError(problems)
    options = check_fields(document, TOP_LEVEL, top, "top-level")
    ceiling = options.get("max_plug_watts") or DEFAULT_MAX_PLUG_WATTS
    sources_doc = document.get("sources")
    sources, plugs = [], {}
    if "sources" in document and not isinstance(sources_doc, list):
        top.at(document, "sources").error(
            f"expected a list of sources (- static: ...), got {describe_value(sources_doc)}")
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
        source_class, plug_class = settings_classes(kind)
        refused = frozenset(key for key in (body if isinstance(body, dict) else ())
                            if key in fields and key not in source_options)
        source = SourceConfig(kind.name, source_options, [], getattr(body, "line", here.line), index,
                              where=here, settings=build(source_class, source_options),
                              refused=refused)
        if isinstance(body, dict) and "plugs" in body and not isinstance(plug_list, list):
            here.at(body, "plugs").error(
                f"expected a list of plugs (- my_plug: ...), got {describe_value(plug_list)}")
            plug_list = []
        plug_fields = {**PLUG_FIELDS, **kind.plug_fields}
        for p_index, plug_item in enumerate(plug_list or []):
            p_here = here.at(body, "plugs").at(plug_list, p_index)
            plug_id, plug_body = _single_key(plug_item, p_here, "my_plug")
            if plug_id is None:
                continue
            try:
                plug_id = plug_id_text(plug_id)
            except Invalid as e:
                p_here.error(f"plug id: {e}")
                continue
            p_here = p_here.at(plug_item, plug_id)
            if plug_body is None:
                p_here.error("expected the plug's settings under its id, got nothing")
                continue
            plug_options = check_fields(plug_body, plug_fields, p_here, f"{kind.name} plug")
            _check_watts(plug_options, plug_body, p_here, ceiling)
            if isinstance(plug_body, dict):
                check_ranges(plug_body, plug_options, p_here)
            if "state_power" in plug_fields and isinstance(plug_body, dict):
                check_states(plug_body, plug_options, p_here)
            plug = PlugConfig(plug_id, kind.name, plug_options,
                              getattr(plug_body, "line", p_here.line), source, where=p_here,
                              settings=build(plug_class, plug_options), max_plug_watts=ceiling)
            if plug_id in plugs:
                p_here.error(f"plug id {shown(plug_id)} is already used at line {plugs[plug_id].line}")
                continue
            plugs[plug_id] = plug
            source.plugs.append(plug)
        sources.append(source)
    for source in sources:
        kinds[source.kind].check(source, source.where)
    warnings = []
    _check_identity(plugs, warnings)
    _check_aggregates(plugs, problems)
    check_publish(document.get("publish"), options.get("publish"), plugs, top.at(document, "publish"))
    if problems:
        raise ConfigError(problems)
    config = Config(path, sources, plugs, options, warnings, list(top.secrets),
                    settings=build(DaemonSettings, options))
    reported = config.reported()
    if len(reported) > MAX_REPORTED_PLUGS:
        warnings.append(f"{path}: {len(reported)} plugs are reported to Sense; "
                        f"Sense shows about {MAX_REPORTED_PLUGS} at most")
    return config


def settings_classes(kind):
    """C{(source settings class, plug settings class)} of C{kind}: those it declares, or
    classes made from its field tables (a kind that declares tables only)."""
    source_class = getattr(kind, "source_settings", None) \
        or from_table(f"{kind.name.title()}SourceSettings", kind.source_fields)
    plug_class = getattr(kind, "plug_settings", None)
    if plug_class is None:
        # The richest of our plug settings whose keys the kind's table has (its power
        # model then reads them), extended by the table's other keys.
        base = next(cls for cls in (ModelSettings, PowerSettings, PlugSettings)
                    if set(field_table(cls, besides=PlugSettings)) <= set(kind.plug_fields))
        plug_class = from_table(f"{kind.name.title()}PlugSettings", kind.plug_fields, base=base)
    return source_class, plug_class


# Plug keys in watts: none may be above max_plug_watts.
WATT_KEYS = ("min_watts", "max_watts", "off_usage", "power", "state_power_default")


def _check_watts(options, body, where, ceiling):
    """Watts in a plug's settings above C{ceiling} are problems; the power model
    gets the ceiling as C{max_plug_watts} (readings above it are refused)."""
    for key in WATT_KEYS:
        value = options.get(key)
        if isinstance(value, (int, float)) and value > ceiling:
            where.at(body, key).error(f"{value:g} W is above max_plug_watts ({ceiling:g} W)")
    for _, watts in options.get("power_curve") or ():
        if watts > ceiling:
            where.at(body, "power_curve").error(
                f"{watts:g} W is above max_plug_watts ({ceiling:g} W)")
            break
    for word, watts in (options.get("state_power") or {}).items():
        if watts > ceiling:
            where.at(body, "state_power").error(
                f"{watts:g} W of state {shown(word)} is above max_plug_watts ({ceiling:g} W)")
    options["max_plug_watts"] = ceiling


# The Kasa app's limit on a device name; Sense shows longer ones cut.
MAX_ALIAS = 31


def _check_identity(plugs, warnings):
    macs = {}
    for plug in plugs.values():
        name = plug.options.get("alias") or plug.id
        if len(name) > MAX_ALIAS:
            warnings.append(f"plug {shown(plug.id)}: its name {shown(name)} has {len(name)} "
                            f"characters; the Kasa app allows {MAX_ALIAS}, and Sense may cut it")
        if plug.options.get("mac") is None:
            plug.options["mac"] = derive_mac(plug.id)
            warnings.append(f"plug {shown(plug.id)} has no mac: using {plug.options['mac']}, derived from "
                            f"its id (stable across restarts; set 'mac' to choose one)")
        if plug.options.get("device_id") is None:
            plug.options["device_id"] = derive_device_id(plug.options["mac"])
        plug.settings = replace(plug.settings, mac=plug.options["mac"],
                                device_id=plug.options["device_id"])
        mac_value = plug.options["mac"]
        if mac_value in macs:
            other = macs[mac_value]
            plug.where.at(plug.options, "mac").error(
                f"plugs {shown(other.id)} (line {other.line}) and {shown(plug.id)} (line {plug.line}) "
                f"have the same MAC {mac_value}")
        else:
            macs[mac_value] = plug


def _check_aggregates(plugs, problems):
    holder = {}
    for plug in plugs.values():
        for element in plug.settings.elements or ():
            where = plug.where.child("elements")
            if element not in plugs:
                where.error(f"aggregate {shown(plug.id)} names unknown plug {shown(element)}"
                            f"{_suggest(element, plugs)}")
            elif element == plug.id:
                where.error(f"aggregate {shown(plug.id)} contains itself")
            elif element in holder:
                where.error(f"plug {shown(element)} is in two aggregates: "
                            f"{shown(holder[element])} and {shown(plug.id)}")
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
                    plug.where.child("elements").error("aggregates form a cycle: " + " -> ".join(
                        clip(element) for element in cycle + [current]))
                break
            seen.append(current)
            current = holder.get(current)


def load_text(text, path="<config>", kinds=None) -> Config:
    try:
        document, duplicates = read_yaml(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([f"{path}:{line}: not valid YAML: {e.problem or e}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: not valid YAML: {e}"]) from None
    except TooLarge as e:
        raise ConfigError([f"{path}:{e.line}: {e}; refusing it"]) from None
    problems = _duplicate_problems(document, duplicates, path)
    try:
        config = parse(document, path, kinds)
    except ConfigError as e:
        if problems:
            raise ConfigError(problems + e.problems) from None
        raise
    if problems:
        raise ConfigError(problems)
    return config


def _duplicate_problems(document, duplicates, path):
    """One problem per key written twice in a mapping, named like the other problems."""
    if not duplicates:
        return []
    by_mapping = {}
    for duplicate in duplicates:
        by_mapping.setdefault(id(duplicate.mapping), []).append(duplicate)
    problems = []
    top = Where(path, problems, getattr(document, "line", 1))
    found = {}          # id(mapping with duplicates) -> its context
    visited = set()     # aliases make the document a graph: visit each container once
    stack = [(document, top)]
    while stack and len(found) < len(by_mapping):
        node, where = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if id(node) in by_mapping:
            found[id(node)] = where
            for duplicate in by_mapping[id(node)]:    # values dropped for a later one
                if isinstance(duplicate.replaced, (dict, list)):
                    stack.append((duplicate.replaced,
                                  where.child(duplicate.key, duplicate.replaced_line)))
        items = node.items() if isinstance(node, dict) else enumerate(node) \
            if isinstance(node, list) else ()
        for key, value in items:
            if isinstance(value, (dict, list)):
                stack.append((value, where.at(node, key)))
    for duplicate in duplicates:
        found.get(id(duplicate.mapping), top).child(duplicate.key, duplicate.line).error(
            f"duplicate key {shown(duplicate.key)} (first at line {duplicate.first})")
    return problems


def load(path, kinds=None) -> Config:
    """Read and validate the config file at C{path}; raise L{ConfigError}."""
    try:
        data = read_regular(path, MAX_CONFIG_BYTES, "config file")
    except UnreadableFile as e:
        raise ConfigError([f"{path}: cannot read config: {e}"]) from None
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
