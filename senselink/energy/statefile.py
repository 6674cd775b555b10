"""The energy state file: validated JSON, written atomically.

The counters survive restarts in a JSON file (C{state_file}, default
C{senselink-state.json} in the state directory, see
L{senselink.energy.service.state_directory}), written atomically (temporary
file, fsync, rename). Only a regular file is read (L{senselink.regularfile}),
kept aside (as a copy: nothing is renamed) or replaced; the path may be a
symlink to one, which is written through.

Every plug's entry is checked on its own against the bounds declared here.
"""

import json
import os
import stat
import tempfile
from datetime import date, datetime, timezone

from senselink.excerpt import excerpt
from senselink.regularfile import UnreadableFile, not_regular, open_regular, read_regular

STATE_VERSION = 1

# One plug's entry is its total, KEEP_DAYS (400) days and its months: a day is some 31
# bytes ("2026-11-26":1234.567890123456,), so about 12 KB of days and, for a century of
# months, 34 KB. 16 MiB holds some 350 plugs with a century of history each, and
# thousands with a few years: no real file comes near it, and parsing it stays fast.
MAX_STATE_BYTES = 16 * 1024 * 1024
# 1e9 W (the highest max_plug_watts) for 100 years is 8.8e14 Wh.
MAX_WH = 1e15
# The years a day or a month in the file may name.
FIRST_YEAR, LAST_YEAR = 2000, 2100
# The Unix times it may hold: from 2000-01-01 to 2100-01-01.
FIRST_TIME, LAST_TIME = 946_684_800, 4_102_444_800


class StateFileError(ValueError):
    """The state file exists and was read, but it is not a usable state file (corrupt)."""


class StateFileUnusable(Exception):
    """The state file cannot be read or written where it is (permissions, a missing or
    read-only directory, not a regular file, too large): it is left alone."""


def check_location(path):
    """Why the state file at C{path} cannot be used, or None.

    An existing file must be a regular file (or a symlink to one) no larger
    than L{MAX_STATE_BYTES}, readable and writable; its directory must let
    a temporary file be made and renamed over it.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(os.path.realpath(path))
    if os.path.lexists(path):
        try:
            os.close(open_regular(path, MAX_STATE_BYTES, "state file"))
        except UnreadableFile as e:
            if not e.missing:     # missing: a symlink to a file not made yet
                return f"cannot read {path}: {e}"
        else:
            if not os.access(path, os.W_OK):
                return f"cannot write {path}: Permission denied"
    if not os.path.isdir(directory):
        return f"cannot write {path}: the directory {directory} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot write {path}: the directory {directory} is not writable"
    return None


def keep_aside(path, data: bytes, now: float) -> str:
    """Keep C{data} (the state file as it was read) as a new file
    C{<path>.corrupt-<UTC time>}, never over an earlier one; returns its name.

    A copy, made before anything overwrites the state file: nothing is renamed.
    """
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{path}.corrupt-{stamp}"
    aside, n = base, 1
    while True:
        try:
            fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            n += 1
            aside = f"{base}-{n}"
            continue
        break
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        try:
            os.unlink(aside)
        except OSError:
            pass
        raise
    return aside


def _energy(value) -> bool:
    """A count of Wh within bounds (comparisons: a 400-digit integer does not overflow)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and 0 <= value <= MAX_WH)


def state_time(value) -> bool:
    """A Unix time within the years the state file may name."""
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and FIRST_TIME <= value <= LAST_TIME)


def _bad_date(key, length) -> bool:
    if not isinstance(key, str) or len(key) != length:
        return True
    try:
        day = date.fromisoformat(key if length == 10 else key + "-01")
    except ValueError:
        return True
    return not FIRST_YEAR <= day.year <= LAST_YEAR


def check_plug_state(saved) -> str:
    """What is wrong with one plug's saved counters, or an empty string."""
    if not isinstance(saved, dict):
        return "not a mapping"
    if not _energy(saved.get("total_wh")):
        return f"total_wh is not a number from 0 to {MAX_WH:g} Wh"
    for name, length in (("days", 10), ("months", 7)):
        table = saved.get(name)
        if not isinstance(table, dict):
            return f"{name} is not a mapping"
        for key, wh in table.items():
            if _bad_date(key, length):
                return (f"bad {name} entry {excerpt(key)} (a date in the years "
                        f"{FIRST_YEAR} to {LAST_YEAR})")
            if not _energy(wh):
                return f"bad {name} entry {excerpt(key)}: not a number from 0 to {MAX_WH:g} Wh"
    return ""


def read_state(path):
    """The state file's bytes, or None when it does not exist.

    L{StateFileUnusable} when it cannot be read, is not a regular file, or
    is larger than L{MAX_STATE_BYTES}.
    """
    try:
        return read_regular(path, MAX_STATE_BYTES, "state file")
    except UnreadableFile as e:
        if e.missing:
            return None
        raise StateFileUnusable(f"cannot read {path}: {e}") from None


def parse_state(data: bytes):
    """The JSON document in C{data}; L{StateFileError} when it is not JSON."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StateFileError(f"not JSON ({e.__class__.__name__})") from None


def write_state(path, state: dict):
    """Write C{state} atomically: a temporary file in the same directory, fsync, rename.

    Only over a regular file or nothing (through a symlink, its target):
    L{StateFileUnusable} when something else is there.
    """
    target = os.path.realpath(path)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    reason = not_regular(mode)
    if reason:
        raise StateFileUnusable(f"cannot write {path}: {reason}")
    directory = os.path.dirname(target)
    # allow_nan=False: a non-finite count fails the save (logged), never reaches the file.
    data = json.dumps(state, separators=(",", ":"), sort_keys=True,
                      allow_nan=False).encode("utf-8")
    fd, temporary = tempfile.mkstemp(prefix=".senselink-state-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


