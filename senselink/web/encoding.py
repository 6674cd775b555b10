"""How the web interface's answers travel: weak ETags from their content, so a reload
revalidates and gets a 304 instead of the bytes again, and gzip for text when the
client accepts it (files of the page are compressed once, when they are read).

The event stream is not compressed: a compressor holds back what it was given, and a
stream's events must leave at once.
"""

import gzip
import hashlib

MIN_GZIP = 1024              # bytes; smaller answers are sent as they are
MAX_TAGS = 16                # entity tags of an If-None-Match header looked at


def etag(data: bytes) -> bytes:
    """A weak entity tag of C{data}: the same bytes, the same tag."""
    return b'W/"' + hashlib.sha256(data).hexdigest()[:24].encode("ascii") + b'"'


def not_modified(request, tag: bytes) -> bool:
    """Set C{ETag: tag}; when the request's C{If-None-Match} names it, answer 304 and
    return True (the caller then sends no body)."""
    request.setHeader(b"ETag", tag)
    presented = request.getHeader(b"if-none-match")
    if not presented:
        return False
    tags = [t.strip() for t in presented.split(b",", MAX_TAGS)[:MAX_TAGS]]
    weak = tag[2:] if tag.startswith(b"W/") else tag
    if b"*" in tags or tag in tags or weak in tags:
        request.setResponseCode(304)
        return True
    return False


def accepts_gzip(request) -> bool:
    """Whether the request's C{Accept-Encoding} takes gzip (and does not refuse it, q=0)."""
    header = request.getHeader(b"accept-encoding") or b""
    for part in header.lower().split(b",", 32)[:32]:
        coding, _, params = part.partition(b";")
        if coding.strip() in (b"gzip", b"x-gzip"):
            q = params.strip().replace(b" ", b"")
            if not q.startswith(b"q="):
                return True
            try:
                return float(q[2:8]) > 0
            except ValueError:
                return False
    return False


def compressed(data: bytes) -> bytes:
    """C{data} gzipped, the same bytes for the same data (no time in the header)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def body(request, data: bytes, gzipped=None) -> bytes:
    """The body to send for C{data}: its gzip (C{gzipped}, else compressed now) when the
    client accepts it and C{data} is at least L{MIN_GZIP} bytes, else C{data}."""
    request.setHeader(b"Vary", b"Accept-Encoding")
    if len(data) < MIN_GZIP or not accepts_gzip(request):
        return data
    request.setHeader(b"Content-Encoding", b"gzip")
    return gzipped if gzipped is not None else compressed(data)
