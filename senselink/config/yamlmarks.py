"""YAML with line marks: mappings and lists that remember where they were written.

Config errors name the line of the key at fault, so the loaders here build
L{_Map} and L{_List} (a dict and a list that also hold the lines of their
items, and for mappings the raw text of scalar values) instead of plain
containers. libyaml parses when PyYAML has it; the pure-Python parser is
kept for its clearer error messages.
"""

import yaml


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


_MARKED = {"tag:yaml.org,2002:map": _construct_map, "tag:yaml.org,2002:seq": _construct_list}


class _PureLoader(yaml.SafeLoader):
    """Safe YAML with line numbers (our constructors above)."""

    yaml_constructors = {**yaml.constructor.SafeConstructor.yaml_constructors, **_MARKED}


_LIBYAML = hasattr(yaml, "CSafeLoader")


class _Loader(yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader):
    """The same, parsed by libyaml when PyYAML has it (~10x faster: 15 ms instead of
    130 ms for a 200-plug config). Its error messages are terser ("found character
    that cannot start any token" for a tab), so errors are reported by L{_PureLoader}."""

    yaml_constructors = {**yaml.constructor.SafeConstructor.yaml_constructors, **_MARKED}


def read_yaml(text):
    """The document in C{text}, with line marks; C{yaml.YAMLError} when it is not valid YAML."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        if not _LIBYAML:
            raise
    return yaml.load(text, Loader=_PureLoader)   # for its error message (or if it accepts)
