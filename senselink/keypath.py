"""'/'-separated lookups into nested JSON, as the original SenseLink's keypaths.

``attributes/brightness`` reads ``value["attributes"]["brightness"]``; a
numeric segment also indexes into a list (``StatusSNS/ENERGY/0``).
"""

MISSING = object()


def split(keypath: str):
    """The segments of a keypath; empty segments (leading/double '/') are ignored."""
    return tuple(part for part in keypath.split("/") if part)


def lookup(value, path, default=MISSING):
    """The value at C{path} (a keypath string or pre-split tuple), or C{default}."""
    if isinstance(path, str):
        path = split(path)
    for part in path:
        if isinstance(value, dict):
            if part not in value:
                return default
            value = value[part]
        elif isinstance(value, list):
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                return default
        else:
            return default
    return value
