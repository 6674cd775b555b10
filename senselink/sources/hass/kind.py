"""The C{hass} source kind: its settings (each key declared once, with its converter), the
converters and the cross-key checks."""

import os
import re
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlunsplit

from senselink.config import (Invalid, SourceKind, boolean, check_power_paths, integer, keypath,
                              string)
from senselink.config.schema import ModelSettings, PlugSettings, ReadingSettings
from senselink.config.settings import field_table, setting
from senselink.extras import missing
from senselink.sources.hass.service import SUPERVISOR, HassService, read_token_file
from senselink.sources.tls import ca_file_path
from senselink.urls import safe_url, split_url

API_PATH = "/api/websocket"
MAX_MESSAGE_LIMIT = 256 * 1024 * 1024    # the largest max_message_size a config may set
# 100,000 entities arrive as one initial event of some 7.6 MB: room for twice that.
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024
_SCHEMES = MappingProxyType({"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"})
# Home Assistant's own entity id rule (homeassistant.core.valid_entity_id).
_ENTITY_ID = re.compile(r"^(?!.+__)(?!_)[\da-z_]+(?<!_)\.(?!_)[\da-z_]+(?<!_)$")


def normalise_url(text: str) -> str:
    """The websocket URL of a Home Assistant given as ws(s):// or http(s)://, path optional.

    C{http://hass:8123} -> C{ws://hass:8123/api/websocket};
    C{https://example.org/ha/} -> C{wss://example.org/ha/api/websocket}.
    """
    text = text.strip()
    shown = safe_url(text)
    try:
        parts = split_url(text)
    except ValueError as e:
        raise Invalid(f"expected a Home Assistant URL like ws://homeassistant.local:8123, got "
                      f"{shown!r}: {e}") from None
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.hostname:
        raise Invalid(f"expected a Home Assistant URL like ws://homeassistant.local:8123 "
                      f"(ws://, wss://, http:// or https://), got {shown!r}")
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


@dataclass(frozen=True)
class HassSourceSettings:
    """The keys of a C{hass} source."""

    url: str = setting(hass_url, doc="Home Assistant URL, e.g. ws://homeassistant.local:8123; "
                                     "supervisor (the default inside a Home Assistant app): "
                                     "through the Supervisor with $SUPERVISOR_TOKEN")
    auth_token: str = setting(string, doc="Long-lived access token (or ${ENV_VAR})", secret=True)
    auth_token_file: str = setting(string, doc="File holding the access token "
                                               "(e.g. a Docker secret)")
    max_message_size: int = setting(integer(0, MAX_MESSAGE_LIMIT), default=DEFAULT_MAX_MESSAGE,
                                    doc="Largest websocket message in bytes (default 16 MiB; "
                                        "0, which once meant no limit, is the largest "
                                        "allowed: 256 MiB)")
    verify_tls: bool = setting(boolean, default=True, doc="Check the server certificate (wss://)")
    ca_file: str = setting(ca_file_path,
                           doc="PEM file of the CA(s) that signed the server certificate")

    @property
    def message_limit(self) -> int:
        """The largest message accepted, in bytes (0 is read as the largest allowed)."""
        return self.max_message_size or MAX_MESSAGE_LIMIT

    @property
    def supervisor(self) -> bool:
        """Whether Home Assistant is reached through the Supervisor (no url means so)."""
        return self.url is None or self.url == SUPERVISOR


@dataclass(frozen=True)
class HassPlugSettings(ReadingSettings, ModelSettings):
    """The keys of a C{hass} plug: the model's, a reading in parts, and the entity's."""

    entity_id: str = setting(entity_id, required=True,
                             doc="Home Assistant entity id, e.g. light.kitchen")
    attribute: str = setting(attribute_name, doc="Attribute scaled to watts, e.g. brightness")
    attribute_keypath: str = setting(keypath, doc="Keypath of the value scaled to watts, "
                                                  "e.g. attributes/data/0/level")
    power_keypath: str = setting(keypath, doc="Keypath of a value in watts, "
                                              "e.g. attributes/current_power_w")
    state_keypath: str = setting(keypath, default="state",
                                 doc="Keypath of the state (on/off, a state_power word)")

    @property
    def scaled(self) -> bool:
        """Whether an attribute is scaled to watts (C{attribute} or C{attribute_keypath})."""
        return self.attribute is not None or self.attribute_keypath is not None


class HassKind(SourceKind):
    name = "hass"
    doc = "Home Assistant entities over the websocket API"
    source_settings = HassSourceSettings
    plug_settings = HassPlugSettings
    source_fields = field_table(HassSourceSettings)
    plug_fields = field_table(HassPlugSettings, besides=PlugSettings)

    def check(self, source, where):
        if {"auth_token", "auth_token_file"} & source.refused:
            return      # a token key was refused already (the error names it)
        settings = source.settings
        has_token = settings.auth_token is not None
        token_file = settings.auth_token_file
        in_app = bool(os.environ.get("SUPERVISOR_TOKEN", "").strip())
        if "url" in source.refused:
            pass                     # an invalid url, reported already
        elif settings.url is None and not in_app:
            where.error(f"missing required key 'url' ({self.source_fields['url'].doc})")
        elif settings.supervisor and not in_app and not has_token and token_file is None:
            where.child("url").error(
                "supervisor needs $SUPERVISOR_TOKEN, which the Supervisor sets in Home Assistant "
                "apps with homeassistant_api: true, and it is not set here; outside the app give "
                "Home Assistant's URL and auth_token")
        if has_token and token_file is not None:
            where.child("auth_token_file").error(
                "give either auth_token or auth_token_file, not both")
        elif not has_token and token_file is None and not settings.supervisor:
            where.error("missing the access token: set auth_token (or ${ENV_VAR}) "
                        "or auth_token_file")
        elif has_token and not settings.auth_token.strip():
            where.child("auth_token").error("the access token is empty")
        elif token_file is not None:
            try:
                read_token_file(token_file)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                reason = getattr(e, "strerror", None) or str(e)
                where.child("auth_token_file").error(
                    f"cannot read the access token from {token_file!r}: {reason}")
        for plug in source.plugs:
            here = plug.where
            s = plug.settings
            if s.attribute is not None and s.attribute_keypath is not None:
                here.error("give either attribute or attribute_keypath, not both")
            measured = check_power_paths(s, here)
            if measured and s.scaled:
                here.error(f"{measured[0]} reads watts directly: it cannot be combined with "
                           "attribute or attribute_keypath")
            elif s.scaled and not s.power_curve and s.attribute_max is None:
                here.error("an attribute needs attribute_max (the value meaning max_watts) "
                           "or a power_curve")

    def initial(self, plug):
        # As the original: 0 W until Home Assistant reports the entity.
        return 0.0, None

    def make_service(self, source, plugs, clock):
        return HassService(source, plugs, clock)
