"""The optional top-level C{web} section of the config (listen, token).

Kept apart from L{senselink.web} so that reading a config does not load the
web stack; the daemon imports that only when C{web} is configured.
"""

from dataclasses import dataclass, field

from senselink.config import Field, Invalid, _describe, add_top_level, string

DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"


@dataclass
class WebOptions:
    listen: str = DEFAULT_LISTEN
    token: str = field(default=None, repr=False)    # never shown

    def __repr__(self):
        return f"WebOptions(listen={self.listen!r}, token={'set' if self.token else 'unset'})"


WEB_KEYS = {
    "listen": f"Twisted server endpoint string (default {DEFAULT_LISTEN})",
    "token": "Bearer token required by requests that change state (PUT)",
}


def endpoint_string(value, raw=None):
    value = string(value).strip()
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    try:
        serverFromString(reactor, value)
    except (ValueError, TypeError, KeyError) as e:
        raise Invalid(f"expected a Twisted endpoint string such as {DEFAULT_LISTEN!r}, "
                      f"got {value!r} ({e})") from None
    return value


def web_section(value, raw=None):
    """The C{web} mapping: C{listen} and C{token}."""
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping with listen and token, got {_describe(value)}")
    lines = getattr(value, "lines", {})

    def at(key):
        return f" (line {lines[key]})" if key in lines else ""
    unknown = [k for k in value if k not in WEB_KEYS]
    if unknown:
        raise Invalid(f"unknown web key {str(unknown[0])!r}{at(unknown[0])}; known keys: "
                      f"{', '.join(WEB_KEYS)}")
    options = WebOptions()
    if value.get("listen") is not None:
        try:
            options.listen = endpoint_string(value["listen"])
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
        options.token = token
    return options


_WEB_FIELD = Field(web_section, doc="Web interface: JSON API, metrics, status page", secret=True)
_WEB_FIELD.secret_keys = ("token",)   # only the token of the mapping is a secret
add_top_level("web", _WEB_FIELD)
