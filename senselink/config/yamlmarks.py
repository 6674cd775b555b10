"""YAML with line marks: mappings and lists that remember where they were written.

Config errors name the line of the key at fault, so the loaders here build
L{MarkedMap} and L{MarkedList} (a dict and a list that also hold the lines of their
items, and for mappings the raw text of scalar values) instead of plain
containers. libyaml parses when PyYAML has it; the pure-Python parser is
kept for its clearer error messages.

A key that YAML 1.1 reads as a boolean (unquoted on, off, yes, no, true,
false) is kept as the text written: config keys are names, and in
C{state_power} such keys are state words.
"""

from types import MappingProxyType
from collections import namedtuple

import yaml

# A key written twice in one mapping: the mapping, the key, the line of its first
# occurrence and of this one, and the value (and its key's line) this one replaced.
Duplicate = namedtuple("Duplicate", "mapping key first line replaced replaced_line")

# Aliases repeat what an anchor holds: nine aliases of nine aliases of ... make a
# few hundred bytes into billions of values ("billion laughs"), which every walk
# of the document (checks, error messages) would expand. A 200-plug config has
# about 3000 values.
MAX_NODES = 100_000


class TooLarge(Exception):
    """The document's aliases expand it beyond L{MAX_NODES} values, or without end."""

    def __init__(self, line, endless=False):
        self.line = line
        self.endless = endless
        super().__init__("YAML aliases expand the document "
                         + ("without end (an alias inside its own anchor)" if endless
                            else f"to more than {MAX_NODES} values"))


class MarkedMap(dict):
    """A mapping that remembers the line of itself, of each key, and raw scalar text."""

    line = 0

    def __init__(self):
        super().__init__()
        self.lines = {}
        self.raw = {}


class MarkedList(list):
    line = 0

    def __init__(self):
        super().__init__()
        self.lines = []


def _construct_map(loader, node):
    result = MarkedMap()
    result.line = node.start_mark.line + 1
    yield result
    merged, written = merge_pairs(node)
    # Keys merged in with "<<: *anchor" come first; keys written here override them.
    pairs = merged + written
    merged = len(merged)
    lines, raw = result.lines, result.raw
    construct = loader.construct_object
    for index, (key_node, value_node) in enumerate(pairs):
        key = _key(loader, key_node)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found an unhashable key", key_node.start_mark) from None
        line = key_node.start_mark.line + 1
        if key in result and index >= merged:
            _note_duplicate(loader, result, key, line, written[:index - merged])
        result[key] = construct(value_node, deep=True)
        lines[key] = line
        if isinstance(value_node, yaml.ScalarNode):
            raw[key] = value_node.value


MERGE_TAG = "tag:yaml.org,2002:merge"
VALUE_TAG = "tag:yaml.org,2002:value"


def merge_pairs(node):
    """C{(merged, written)}: the pairs a mapping node takes in through merge keys, and its own.

    Our reading of the YAML merge key (U{https://yaml.org/type/merge.html}),
    whatever PyYAML release is installed (6.0.4 changed which mapping of a
    merged list wins): C{<<: *a} or C{<<: [*a, *b]} merges the keys of those
    mappings; of a list, a key of an earlier mapping overrides the same key of
    a later one; the mapping's own keys override every merged key. In
    C{merged} a later pair overrides an earlier one, as in construction. Nodes
    are read, never changed: an anchor's node is shared by all its aliases.
    """
    merged, written = [], []
    for key_node, value_node in node.value:
        if key_node.tag != MERGE_TAG:
            written.append((key_node, value_node))
            continue
        if isinstance(value_node, yaml.MappingNode):
            sources = [value_node]
        elif isinstance(value_node, yaml.SequenceNode):
            sources = value_node.value
        else:
            sources = [None]
        for source in reversed(sources):    # the first of the list is added last: it wins
            if not isinstance(source, yaml.MappingNode):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "a merge key (<<) takes a mapping or a list of mappings, found "
                    + (source or value_node).id, (source or value_node).start_mark)
            inner_merged, inner_written = merge_pairs(source)
            merged += inner_merged
            merged += inner_written
    return merged, written


def _key(loader, key_node):
    """A mapping key: as YAML reads it, except booleans, which stay the text written
    (and a plain C{=}, which YAML 1.1 tags as its "value key", is the text C{=})."""
    if key_node.tag == VALUE_TAG:
        return key_node.value
    key = loader.construct_object(key_node, deep=True)
    if key.__class__ is bool and isinstance(key_node, yaml.ScalarNode):
        return key_node.value
    return key


def _note_duplicate(loader, mapping, key, line, before):
    """Note C{key} at C{line} if it was written before in C{mapping} (C{before}: those pairs)."""
    for key_node, _ in before:
        if _key(loader, key_node) == key:
            loader.duplicates.append(Duplicate(mapping, key, key_node.start_mark.line + 1, line,
                                               mapping[key], mapping.lines[key]))
            return
    # The key was merged in from an anchor: writing it here overrides it.


def _construct_list(loader, node):
    result = MarkedList()
    result.line = node.start_mark.line + 1
    yield result
    for item in node.value:
        result.append(loader.construct_object(item, deep=True))
        result.lines.append(item.start_mark.line + 1)


_MARKED = MappingProxyType({"tag:yaml.org,2002:map": _construct_map, "tag:yaml.org,2002:seq": _construct_list})


class _Marks:
    """What our constructors note while loading one document."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates = []     # a Duplicate for each key written twice in a mapping


class PureLoader(_Marks, yaml.SafeLoader):
    """Safe YAML with line numbers (our constructors above)."""

    yaml_constructors = {**yaml.constructor.SafeConstructor.yaml_constructors, **_MARKED}


_LIBYAML = hasattr(yaml, "CSafeLoader")


class FastLoader(_Marks, yaml.CSafeLoader if _LIBYAML else yaml.SafeLoader):
    """The same, parsed by libyaml when PyYAML has it (~10x faster: 15 ms instead of
    130 ms for a 200-plug config). Its error messages are terser ("found character
    that cannot start any token" for a tab), so errors are reported by L{PureLoader}."""

    yaml_constructors = {**yaml.constructor.SafeConstructor.yaml_constructors, **_MARKED}


def _expanded_size(root, limit=MAX_NODES):
    """The number of values in the tree of nodes from C{root}, each alias counted in full.

    Aliases share node objects, so each shared subtree is counted once and its
    size reused; L{TooLarge} as soon as a subtree passes C{limit}, or on a
    cycle (an alias inside its own anchor).
    """
    if isinstance(root, yaml.ScalarNode):
        return 1
    scalar = yaml.ScalarNode
    sizes = {}           # id(collection node) -> expanded size, of the nodes done
    open_nodes = set()   # ids of the collection nodes whose children are being counted
    stack = [root]
    while stack:
        node = stack[-1]
        key = id(node)
        children = node.value
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in children for n in pair]
        if key in open_nodes:        # its children are done
            stack.pop()
            open_nodes.discard(key)
            size = 1
            for child in children:
                size += 1 if isinstance(child, scalar) else sizes[id(child)]
            if size > limit:
                raise TooLarge(node.start_mark.line + 1)
            sizes[key] = size
        elif key in sizes:           # an alias of a node already counted
            stack.pop()
        else:
            open_nodes.add(key)
            for child in children:
                if not isinstance(child, scalar) and id(child) not in sizes:
                    if id(child) in open_nodes:
                        raise TooLarge(child.start_mark.line + 1, endless=True)
                    stack.append(child)
    return sizes[id(root)]


def _read(loader_class, text):
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        if "*" in text:    # no alias without a "*": then nothing is repeated
            _expanded_size(node)
        return loader.construct_document(node), loader.duplicates
    finally:
        loader.dispose()


def read_yaml(text):
    """C{(document, duplicates)} of C{text}; C{yaml.YAMLError} when it is not valid YAML,
    L{TooLarge} when its aliases expand it beyond L{MAX_NODES} values.

    The document has line marks. C{duplicates} lists a L{Duplicate} for each
    key written twice in one mapping: YAML says a mapping's keys are unique,
    PyYAML keeps the last value. (Keys merged in with C{<<: *anchor} are not
    duplicates: the mapping's own keys override them.)
    """
    try:
        return _read(FastLoader, text)
    except yaml.YAMLError:
        if not _LIBYAML:
            raise
    return _read(PureLoader, text)   # for its error message (or if it accepts)
