"""Optional features and the pip extra that installs each.

The default install is lean: TLS support (pyOpenSSL, which every Twisted
reactor loads as soon as it is installed: about 12 MB of resident memory)
and treq (HTTP sources; it requires TLS support) come with extras. A config
that needs one that is not installed is a config error naming the extra,
found without importing anything.
"""

from importlib.util import find_spec
from types import MappingProxyType

# extra -> (module that shows it is installed, what needs it)
EXTRAS = MappingProxyType({
    "tls": ("OpenSSL", "TLS (https://, wss://, MQTT over TLS, ssl: listeners)"),
    "http": ("treq", "http sources"),
})


def missing(extra, find=None):
    """None when C{extra} is installed, else the sentence saying how to install it."""
    module, what = EXTRAS[extra]
    if (find or find_spec)(module) is not None:
        return None
    return f"{what} need the {extra!r} extra: pip install 'senselink-twisted[{extra}]'"
