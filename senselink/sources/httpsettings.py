"""The keys of the http source kind: a source's (L{HttpSourceSettings}) and a plug's
(L{HttpPlugSettings}), each declared once with its converter, bounds, default and doc."""

import re
from dataclasses import dataclass

from senselink.config.fields import Invalid, boolean, number, state_value, string, string_map
from senselink.config.schema import ModelSettings, ReadingSettings
from senselink.config.settings import setting
from senselink.excerpt import clip
from senselink.extras import missing
from senselink.sources.tls import ca_file_path
from senselink.urls import safe_url, split_url


def http_url(value, raw=None):
    value = string(value)
    try:
        parts = split_url(value)
    except ValueError as e:
        raise Invalid(f"expected an http:// or https:// URL, got {safe_url(value)!r}: {e}") \
            from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected an http:// or https:// URL, got {safe_url(value)!r}")
    needed = missing("http") or (parts.scheme == "https" and missing("tls"))
    if needed:
        raise Invalid(needed)
    return value


HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")   # an HTTP token


def header_map(value, raw=None):
    """Request headers: names are HTTP tokens, values one line of text."""
    headers = string_map(value)
    for name, text in headers.items():
        if not HEADER_NAME.match(name):
            raise Invalid(f"{name!r} is not a valid HTTP header name")
        if "\r" in text or "\n" in text:
            raise Invalid(f"the value of header {name!r} must be a single line")
    return headers


REDIRECT_POLICIES = ("same_host", "any", "none")


def redirect_policy(value, raw=None):
    """C{follow_redirects}: one of L{REDIRECT_POLICIES}."""
    value = string(value)
    if value not in REDIRECT_POLICIES:
        raise Invalid(f"expected one of {', '.join(REDIRECT_POLICIES)}, got {clip(value)!r}")
    return value


@dataclass(frozen=True)
class HttpSourceSettings:
    """One polled URL."""

    url: str = setting(http_url, required=True, doc="URL to GET (http:// or https://)")
    interval: float = setting(number(1, 86400, unit=" s"), default=10.0,
                              doc="Seconds between polls")
    timeout: float = setting(number(0.1, 600, unit=" s"), default=5.0,
                             doc="Seconds a poll may take")
    headers: dict = setting(header_map, secret=True,
                            doc="Extra request headers, e.g. Authorization (${ENV} allowed)")
    verify_tls: bool = setting(boolean, default=True, doc="Check the server's TLS certificate")
    ca_file: str = setting(ca_file_path, doc="PEM file of CA certificates to trust")
    follow_redirects: str = setting(
        redirect_policy, default="same_host",
        doc="Redirects followed: same_host (same scheme, host and port), any, or none; "
            "headers and credentials go only to the url's own scheme, host and port")


@dataclass(frozen=True)
class HttpPlugSettings(ModelSettings, ReadingSettings):
    """A plug reading its values from the polled body (the whole body without keypaths)."""

    on_state_value: str = setting(state_value, default="on", doc="State that means on")
    power_keypath: str = setting(string, doc="Keypath of a power reading in watts")
    state_keypath: str = setting(string, doc="Keypath of a state (on/off, a state_power word)")
    attribute_keypath: str = setting(string, doc="Keypath of an attribute scaled to watts")
