"""URLs as people see them: in log lines, status pages and config errors."""

from urllib.parse import urlsplit, urlunsplit

UNPARSABLE = "(unparsable URL)"


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
