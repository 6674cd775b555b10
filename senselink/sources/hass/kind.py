"""The C{hass} source kind: its config keys, their converters and the cross-key checks."""

import os
import re
from types import MappingProxyType
from urllib.parse import urlsplit, urlunsplit

from senselink.config import (
    MODEL_FIELDS, READING_FIELDS, Field, Invalid, SourceKind, boolean, check_power_paths, integer,
    keypath, string,
)
from senselink.extras import missing
from senselink.sources.hass.service import SUPERVISOR, HassService, read_token_file
from senselink.sources.tls import ca_file_path
from senselink.urls import safe_url

API_PATH = "/api/websocket"
MAX_MESSAGE_LIMIT = 256 * 1024 * 1024    # the largest max_message_size a config may set
_SCHEMES = MappingProxyType({"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"})
# Home Assistant's own entity id rule (homeassistant.core.valid_entity_id).
_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


def normalise_url(text: str) -> str:
    """The websocket URL of a Home Assistant given as ws(s):// or http(s)://, path optional.

    C{http://hass:8123} -> C{ws://hass:8123/api/websocket};
    C{https://example.org/ha/} -> C{wss://example.org/ha/api/websocket}.
    """
    text = text.strip()
    parts = urlsplit(text)
    shown = safe_url(text)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise Invalid(f"expected a Home Assistant URL like ws://homeassistant.local:8123 "
                      f"(ws://, wss://, http:// or https://), got {shown!r}")
    try:
        parts.port
    except ValueError:
        raise Invalid(f"the port in {shown!r} is not a port number") from None
    if scheme == "wss" and missing("tls"):
        raise Invalid(missing("tls"))
    path = parts.path.rstrip("/")
    if not path.endswith(API_PATH):
        if path.endswith("/api"):
            path = path[:-len("/api")]
        path += API_PATH
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def hass_url(value, raw=None):
    text = string(value)
    if text.strip().lower() == SUPERVISOR:
        return SUPERVISOR
    return normalise_url(text)


def entity_id(value, raw=None):
    value = string(value).strip()
    if not _ENTITY_ID.match(value):
        raise Invalid(f"expected a Home Assistant entity id like light.kitchen, got {value!r}")
    return value


def attribute_name(value, raw=None):
    value = string(value).strip()
    if not value or "/" in value:
        raise Invalid(f"expected an attribute name like brightness (use attribute_keypath "
                      f"for nested values), got {value!r}")
    return value


class HassKind(SourceKind):
    name = "hass"
    doc = "Home Assistant entities over the websocket API"
    source_fields = {
        "url": Field(hass_url, doc="Home Assistant URL, e.g. ws://homeassistant.local:8123; "
                                   "supervisor (the default inside a Home Assistant app): "
                                   "through the Supervisor with $SUPERVISOR_TOKEN"),
        "auth_token": Field(string, doc="Long-lived access token (or ${ENV_VAR})", secret=True),
        "auth_token_file": Field(string, doc="File holding the access token (e.g. a Docker secret)"),
        "max_message_size": Field(integer(0, MAX_MESSAGE_LIMIT), default=0,
                                  doc="Largest websocket message in bytes (0: no limit)"),
        "verify_tls": Field(boolean, default=True, doc="Check the server certificate (wss://)"),
        "ca_file": Field(ca_file_path, doc="PEM file of the CA(s) that signed the server certificate"),
    }
    plug_fields = {
        **MODEL_FIELDS,
        "entity_id": Field(entity_id, required=True, doc="Home Assistant entity id, e.g. light.kitchen"),
        "attribute": Field(attribute_name, doc="Attribute scaled to watts, e.g. brightness"),
        "attribute_keypath": Field(keypath, doc="Keypath of the value scaled to watts, "
                                                "e.g. attributes/data/0/level"),
        "power_keypath": Field(keypath, doc="Keypath of a value in watts, "
                                            "e.g. attributes/current_power_w"),
        **READING_FIELDS,
        "state_keypath": Field(keypath, default="state", doc="Keypath of the state (on/off, a "
                                                             "state_power word)"),
    }

    def check(self, source, where):
        options = source.options
        if "auth_token" not in options or "auth_token_file" not in options:
            return      # a token key was refused already (the error names it)
        has_token = options.get("auth_token") is not None
        token_file = options.get("auth_token_file")
        url = options.get("url")
        supervisor = (url or SUPERVISOR) == SUPERVISOR
        in_app = bool(os.environ.get("SUPERVISOR_TOKEN", "").strip())
        if "url" not in options:
            pass                     # an invalid url, reported already
        elif url is None and not in_app:
            where.error(f"missing required key 'url' ({self.source_fields['url'].doc})")
        elif supervisor and not in_app and not has_token and token_file is None:
            where.at(options, "url").error(
                "supervisor needs $SUPERVISOR_TOKEN, which the Supervisor sets in Home Assistant "
                "apps with homeassistant_api: true, and it is not set here; outside the app give "
                "Home Assistant's URL and auth_token")
        if has_token and token_file is not None:
            where.at(options, "auth_token_file").error(
                "give either auth_token or auth_token_file, not both")
        elif not has_token and token_file is None and not supervisor:
            where.error("missing the access token: set auth_token (or ${ENV_VAR}) "
                        "or auth_token_file")
        elif has_token and not options["auth_token"].strip():
            where.at(options, "auth_token").error("the access token is empty")
        elif token_file is not None:
            try:
                read_token_file(token_file)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or str(e)
                where.at(options, "auth_token_file").error(
                    f"cannot read the access token from {token_file!r}: {reason}")
        for plug in source.plugs:
            here = plug.where
            o = plug.options
            if o.get("attribute") is not None and o.get("attribute_keypath") is not None:
                here.error("give either attribute or attribute_keypath, not both")
            measured = check_power_paths(o, here)
            if measured and (
                    o.get("attribute") is not None or o.get("attribute_keypath") is not None):
                here.error(f"{measured[0]} reads watts directly: it cannot be combined with "
                           "attribute or attribute_keypath")
            elif ((o.get("attribute") is not None or o.get("attribute_keypath") is not None)
                    and not o.get("power_curve")):
                if o.get("attribute_max") is None:
                    here.error("an attribute needs attribute_max (the value meaning max_watts) "
                               "or a power_curve")

    def initial(self, plug):
        # As the original: 0 W until Home Assistant reports the entity.
        return 0.0, None

    def make_service(self, source, plugs, clock):
        return HassService(source, plugs, clock)
