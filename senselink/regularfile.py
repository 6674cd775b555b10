"""Reading the files a person names: the config, the state file, certificates, tokens.

Every such file is read here, one way: regular files only (a symlink to one
is fine), opened without blocking, refused above a size cap, and read in
bounded pieces that stop past the cap (a file that grows while it is read).
Whatever else the path names (a FIFO, a device, a directory, a socket) is
refused before it is opened and again on the opened descriptor, so opening
never hangs and never has a device's side effects. The reason is one clause
to put after the path: C{it is a FIFO, not a regular file}.
"""

import errno
import os
import stat

PIECE = 64 * 1024    # bytes read at a time

# What a path is, for the messages: (test, "it is ...").
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


class UnreadableFile(Exception):
    """A file that cannot be used as one. C{str()} is the reason, to follow the path:
    C{"it is a FIFO (named pipe), not a regular file"}, C{"Permission denied"}.

    @ivar missing: True when nothing exists at the path.
    """

    def __init__(self, reason, missing=False):
        super().__init__(reason)
        self.missing = missing


def describe_size(size: int) -> str:
    """C{4 MiB}, C{512 KiB} or C{100 bytes}: a cap as a person writes it."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


def not_regular(mode: int) -> str:
    """Why a file of C{mode} is refused, or an empty string for a regular file."""
    if stat.S_ISREG(mode):
        return ""
    for test, name in _KINDS:
        if test(mode):
            return f"it is {name}, not a regular file"
    return "it is not a regular file"


def _too_large(size, limit, what):
    return UnreadableFile(f"it holds {size} bytes, more than the {describe_size(limit)} "
                          f"a {what} may hold")


def _oserror(e):
    return UnreadableFile(e.strerror or str(e), missing=e.errno == errno.ENOENT)


def open_regular(path, limit: int, what: str = "file") -> int:
    """A read-only descriptor of the regular file C{path}, no larger than C{limit} bytes.

    @raise UnreadableFile: it does not exist, cannot be opened, is not a
        regular file, or is larger than C{limit}.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise _oserror(e) from None
    reason = not_regular(mode)
    if reason:
        raise UnreadableFile(reason)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise _oserror(e) from None
    try:
        status = os.fstat(fd)    # the path may have been replaced since the stat above
        reason = not_regular(status.st_mode)
        if reason:
            raise UnreadableFile(reason)
        if status.st_size > limit:
            raise _too_large(status.st_size, limit, what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file C{path}, at most C{limit} of them.

    @param what: what the file is, for the message about its size ("config file").
    @raise UnreadableFile: as L{open_regular}, and when the file grows past
        C{limit} while it is read.
    """
    fd = open_regular(path, limit, what)
    try:
        pieces, total = [], 0
        while True:
            try:
                piece = os.read(fd, min(PIECE, limit + 1 - total))
            except OSError as e:
                raise _oserror(e) from None
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)
            total += len(piece)
            if total > limit:
                raise UnreadableFile(f"it grew past the {describe_size(limit)} a {what} may "
                                     f"hold while it was read")
    finally:
        os.close(fd)
