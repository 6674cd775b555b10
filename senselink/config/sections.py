"""The optional top-level sections besides C{sources} and C{target}.

Each is a L{Field} (converter, default, documentation) that
L{senselink.config.schema} lists; the runtime modules read the validated
values from C{Config.options}:

    allow_from, rate_limit    who gets answers, and how many (L{senselink.guard})
    device, kasa_clients      the power strip Kasa clients see (L{senselink.strip})
    web                       JSON API, metrics, status page (L{senselink.web})
    state_file                the energy counters' file (L{senselink.energy})

Reading a config loads none of those modules.
"""

import ipaddress
import os
from dataclasses import dataclass, field
from types import MappingProxyType

from senselink.config.fields import (MAX_WATTS, Field, Invalid, boolean, describe_value,
                                     device_id, mac, name, number, shown, string)
from senselink.excerpt import clip
from senselink.extras import missing
from senselink.plugs import derive_device_id, derive_mac

# ---------------------------------------------------------------- allow_from, rate_limit

# "The LAN": loopback, private IPv4, link-local, IPv6 unique-local and link-local.
DEFAULT_ALLOW = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                 "169.254.0.0/16", "::1/128", "fc00::/7", "fe80::/10")
DEFAULT_EXEMPT = ("127.0.0.0/8", "::1/128")
DEFAULT_RATE = MappingProxyType(
    {"requests_per_second": 10.0, "burst": 20.0, "replies_per_second": 2000.0})


def networks(value, raw=None):
    """A list of addresses/CIDRs as ip_network objects."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise Invalid(f"expected a list of addresses or CIDRs, got {shown(value)}")
    out = []
    for item in value:
        try:
            out.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            raise Invalid(f"expected an address or CIDR like 192.168.1.0/24, got {shown(item)}") from None
    return tuple(out)


RATE = number(0.001, 1_000_000)     # requests, replies a second; burst


@dataclass(frozen=True)
class RateLimit:
    """The C{rate_limit} section: per-source token bucket, global reply cap, exempt hosts."""

    requests_per_second: float
    burst: float
    replies_per_second: float
    exempt: tuple                  # ip_network objects never limited


def rate_limit(value, raw=None):
    """The C{rate_limit} section: False, or a L{RateLimit} (missing keys take defaults)."""
    if value is False:
        return False
    if value is True or value is None:
        value = {}
    if not isinstance(value, dict):
        raise Invalid(f"expected false or a mapping, got {shown(value)}")
    known = set(DEFAULT_RATE) | {"exempt"}
    unknown = set(value) - known
    if unknown:
        raise Invalid(f"unknown rate_limit key {shown(sorted(unknown, key=str)[0])}; known keys: "
                      f"{', '.join(sorted(known))}")
    out = dict(DEFAULT_RATE)
    for key in DEFAULT_RATE:
        if key in value:
            try:
                out[key] = float(RATE(value[key]))
            except Invalid as e:
                raise Invalid(f"{key}: {e}") from None
    return RateLimit(exempt=tuple(networks(value.get("exempt", list(DEFAULT_EXEMPT)))), **out)


ALLOW_FROM = Field(networks, default=tuple(networks(list(DEFAULT_ALLOW))),
                   doc="addresses/CIDRs whose requests are answered (default: the LAN)")
RATE_LIMIT = Field(rate_limit, default=rate_limit(None),
                   doc="per-source and global limits, or false")

# ---------------------------------------------------------------- device, kasa_clients

DEFAULT_ALIAS = "SenseLink"


def derive_strip_mac(alias: str) -> str:
    """The strip's MAC when none is configured: derived from its alias, the same on every start."""
    return derive_mac(alias, salt=b"senselink-strip:")


_DEVICE_KEYS = MappingProxyType({
    "alias": name,
    "mac": mac,
    "device_id": device_id,
})


@dataclass(frozen=True)
class StripIdentity:
    """The power strip Kasa clients see (the C{device} section)."""

    alias: str
    mac: str
    device_id: str


def device_identity(value, raw=None) -> StripIdentity:
    """The C{device:} mapping: alias, mac, device_id, with stable defaults filled in."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise Invalid("expected a mapping with alias, mac and/or device_id, got "
                      f"{shown(value)}")
    out = {}
    raws = getattr(value, "raw", {})
    for key, item in value.items():
        convert = _DEVICE_KEYS.get(key)
        if convert is None:
            raise Invalid(f"unknown key {shown(key)}; known keys: "
                          f"{', '.join(sorted(_DEVICE_KEYS))}")
        if item is None:
            continue
        try:
            out[key] = convert(item, raws.get(key))
        except Invalid as e:
            raise Invalid(f"{key}: {e}") from None
    out.setdefault("alias", DEFAULT_ALIAS)
    if not out["alias"]:
        raise Invalid("alias: expected a non-empty name")
    out.setdefault("mac", derive_strip_mac(out["alias"]))
    out.setdefault("device_id", derive_device_id(out["mac"]))
    return StripIdentity(**out)


DEVICE = Field(device_identity, default=device_identity(None),
               doc="Identity of the power strip Kasa clients see: alias, mac, device_id")
KASA_CLIENTS = Field(boolean, default=True,
                     doc="Answer Kasa clients (discovery, TCP sessions) besides the Sense request")

# ---------------------------------------------------------------- web

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"


@dataclass(frozen=True)
class WebOptions:
    listen: str = DEFAULT_LISTEN
    token: str = field(default=None, repr=False)    # never shown

    def __repr__(self):
        return f"WebOptions(listen={self.listen!r}, token={'set' if self.token else 'unset'})"


WEB_KEYS = MappingProxyType({
    "listen": f"Twisted server endpoint string (default {DEFAULT_LISTEN})",
    "token": "Bearer token required by requests that change state (PUT)",
})


def endpoint_fields(text):
    """C{(kind, positional, keyword)} of a server endpoint string, split on the colons
    that are not escaped (C{\\:}): C{"tcp:8080:interface=::1"} is not that, but
    C{"tcp:8080:interface=\\:\\:1"} -> C{("tcp", ["8080"], {"interface": "::1"})}."""
    fields, current, escaped = [], "", False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    if len(fields) == 1 and fields[0].isdigit():      # "8080" means tcp:8080
        fields = ["tcp"] + fields
    positional = [f for f in fields[1:] if "=" not in f]
    keyword = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    return fields[0].lower(), positional, keyword


def endpoint_problem(text):
    """Why the server endpoint string C{text} cannot listen, or None: what Twisted's
    parser refuses (whatever it raises), a TCP port outside 0..65535, a Unix socket in
    a directory that does not exist, a systemd socket that systemd did not pass."""
    kind, positional, keyword = endpoint_fields(text)
    if kind in ("ssl", "tls") and missing("tls"):
        return missing("tls")
    if kind in ("tcp", "tcp6", "ssl", "tls"):
        port = keyword.get("port", positional[0] if positional else "")
        if not port.isdigit() or int(port) > 65535:
            return f"the port must be a number from 0 to 65535, got {shown(port)}"
    if kind == "unix":
        address = keyword.get("address", positional[0] if positional else "")
        directory = os.path.dirname(os.path.abspath(address)) if address else ""
        if not address or not os.path.isdir(directory):
            return f"the socket's directory {shown(directory)} does not exist"
    if kind == "systemd" and not os.environ.get("LISTEN_FDS"):
        return "systemd: listens on a socket systemd passes (LISTEN_FDS), and none was passed"
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    try:
        serverFromString(reactor, text)
    except Exception as e:       # the parser's own words, whatever it raised
        reason = (f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.strerror
                  else str(e) or type(e).__name__)
        return clip(reason)
    return None


def endpoint_string(value, raw=None):
    value = string(value).strip()
    problem = endpoint_problem(value)
    if problem:
        raise Invalid(f"expected a Twisted endpoint string such as {DEFAULT_LISTEN!r}, "
                      f"got {shown(value)} ({problem})")
    return value


def web_section(value, raw=None):
    """The C{web} mapping: C{listen} and C{token}."""
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping with listen and token, got {describe_value(value)}")
    lines = getattr(value, "lines", {})

    def at(key):
        return f" (line {lines[key]})" if key in lines else ""
    unknown = [k for k in value if k not in WEB_KEYS]
    if unknown:
        raise Invalid(f"unknown web key {shown(str(unknown[0]))}{at(unknown[0])}; known keys: "
                      f"{', '.join(WEB_KEYS)}")
    listen, token = DEFAULT_LISTEN, None
    if value.get("listen") is not None:
        try:
            listen = endpoint_string(value["listen"])
        except Invalid as e:
            raise Invalid(f"listen{at('listen')}: {e}") from None
    if value.get("token") is not None:
        token = value["token"]
        if not isinstance(token, (str, int)) or isinstance(token, bool):
            raise Invalid(f"token{at('token')}: expected text")
        try:
            token = string(token)
        except Invalid as e:
            raise Invalid(f"token{at('token')}: {e}") from None
        if not token.strip():
            raise Invalid(f"token{at('token')}: expected non-empty text")
    return WebOptions(listen, token)


# Only the token of the mapping is a secret.
WEB = Field(web_section, doc="Web interface: JSON API, metrics, status page", secret=True,
            secret_keys=("token",))

# ---------------------------------------------------------------- state_file

DEFAULT_STATE_FILE = "senselink-state.json"

# ---------------------------------------------------------------- watts

DEFAULT_MAX_PLUG_WATTS = 100_000.0

MAX_PLUG_WATTS = Field(number(1, MAX_WATTS, unit=" W"), default=DEFAULT_MAX_PLUG_WATTS,
                       doc="The most watts one plug may report; a reading above is "
                           "refused like an unreadable value, a config value above is an error")

DEFAULT_STATE_SAVE_INTERVAL = 60.0


def state_file(value, raw=None):
    """A path, or false: the counters are kept in memory only."""
    if value is False:
        return False
    if value is True:
        raise Invalid("expected a file name, or false to keep the counters in memory only")
    value = string(value).strip()
    if not value:
        raise Invalid("expected a file name, or false to keep the counters in memory only")
    return value


STATE_FILE = Field(state_file, default=DEFAULT_STATE_FILE,
                   doc="File keeping the plugs' energy counters across restarts "
                       "(relative paths are in the state directory); false: memory only")

STATE_SAVE_INTERVAL = Field(number(1, 86400, unit=" s"), default=DEFAULT_STATE_SAVE_INTERVAL,
                            doc="Seconds between saves of the state file (what a power cut "
                                "or SIGKILL can lose at most)")
