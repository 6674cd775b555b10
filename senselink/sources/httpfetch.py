"""One poll of the http source: a GET, its redirects as the source allows them, its body.

No cookies are kept or sent. Redirects (301, 302, 303, 307, 308) are followed
at most L{MAX_REDIRECTS} times, and only as C{follow_redirects} says:
C{same_host} (the default) to the same scheme, host and port as the
configured url, C{any} to any http(s) URL, C{none} never. The configured
headers and the url's Basic credentials are sent only to the configured
url's own scheme, host and port. Every URL shown (the configured one, a
C{Location}) goes through L{safe_url}: no user, password or query.
"""

from urllib.parse import quote, urljoin

from twisted.internet import defer
from twisted.web.client import Agent
from twisted.web.http_headers import Headers

from senselink.excerpt import clip
from senselink.sources.httpclient import BoundedEndpoints, PollFailed, read_body, tls_policy
from senselink.urls import safe_url, split_url

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
DISCARDED_BODY = 64 * 1024    # bytes of a redirect's or an error's body read (and dropped)
URL_SAFE = ":/?#[]@!$&'()*+,;=%~"    # left as they are when a URL is made ASCII


def origin(url):
    """C{(scheme, host, port)} of C{url}, the port made explicit; None when unreadable."""
    try:
        parts = split_url(url)
    except ValueError:
        return None
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class Fetcher:
    """GETs C{url} with C{headers} (name -> [bytes]) through C{pool}.

    C{plain_headers} are the ones sent to any other scheme, host or port.
    """

    def __init__(self, reactor, pool, settings, url, headers, plain_headers, body_limit):
        self.agent = Agent.usingEndpointFactory(
            reactor, BoundedEndpoints(reactor, tls_policy(settings)), pool)
        self.url = url
        self.origin = origin(url)
        self.follow = settings.follow_redirects
        self.headers = headers
        self.plain_headers = plain_headers
        self.body_limit = body_limit

    @defer.inlineCallbacks
    def get(self):
        """A Deferred firing with the body (bytes); L{PollFailed} or a connection error."""
        url = self.url
        for _ in range(MAX_REDIRECTS + 1):
            headers = self.headers if origin(url) == self.origin else self.plain_headers
            response = yield self.agent.request(b"GET", quote(url, safe=URL_SAFE).encode("ascii"),
                                                Headers(headers))
            if response.code in REDIRECTS:
                url = yield self._redirected(url, response)
                continue
            if not 200 <= response.code < 300:
                # Read (a bounded amount of) the body so the connection can be reused.
                yield self._discard(response)
                raise PollFailed(f"HTTP {response.code} "
                                 f"{clip(response.phrase.decode('latin-1', 'replace'))}")
            body = yield read_body(response, self.body_limit)
            return body
        raise PollFailed(f"more than {MAX_REDIRECTS} redirects (the last to {safe_url(url)})")

    @defer.inlineCallbacks
    def _redirected(self, url, response):
        """Where a redirect leads, if this source follows it; else L{PollFailed}."""
        code = response.code
        yield self._discard(response)
        locations = response.headers.getRawHeaders(b"location") or []
        if len(locations) != 1 or not locations[0].strip():
            raise PollFailed(f"HTTP {code} redirect without one Location")
        target = urljoin(url, locations[0].strip().decode("latin-1"))
        shown = safe_url(target)
        if self.follow == "none":
            raise PollFailed(f"HTTP {code} redirect to {shown} not followed "
                             f"(follow_redirects: none)")
        there = origin(target)
        if there is None or there[0] not in ("http", "https") or not there[1]:
            raise PollFailed(f"HTTP {code} redirect to {shown}: not an http(s) URL")
        if self.follow == "same_host" and there != self.origin:
            raise PollFailed(f"HTTP {code} redirect to {shown} refused: another scheme, host "
                             f"or port (follow_redirects: same_host; 'any' follows it)")
        return target

    @staticmethod
    def _discard(response):
        return read_body(response, DISCARDED_BODY).addErrback(lambda _: None)
