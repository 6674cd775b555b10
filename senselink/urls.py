"""URLs as people see them: in log lines, status pages and config errors."""

from urllib.parse import urlsplit, urlunsplit

UNPARSABLE = "(unparsable URL)"


def split_url(url: str):
    """C{urlsplit(url)} whose host and port could be read: ValueError, with words a
    config error can carry, for what C{urlsplit} refuses (C{http://[::1}) or a port that
    is not a number from 0 to 65535."""
    try:
        parts = urlsplit(url)
        parts.hostname
    except ValueError as e:
        raise ValueError(f"not a URL ({e})") from None
    try:
        parts.port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    return parts


def safe_url(url: str) -> str:
    """C{url} without user, password, query or fragment.

    C{https://u:pw@example.net:8443/x?key=v#f} -> C{https://example.net:8443/x}.
    A URL whose host or port cannot be read is shown as it was written (still
    without query and fragment) only when it has no C{@}: a password holding
    C{/}, C{?} or C{#} moves the C{@} out of the part C{urlsplit} reads as the
    host, and the password would then pass for a host and port.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        if "@" in url:
            return UNPARSABLE
        return url.split("#", 1)[0].split("?", 1)[0]
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
