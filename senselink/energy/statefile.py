"""The energy state file: validated JSON, written atomically.

The counters survive restarts in a JSON file (C{state_file}, default
C{senselink-state.json} in the state directory, see
L{senselink.energy.service.state_directory}), written atomically (temporary
file, fsync, rename).
"""

import json
import math
import os
import tempfile
from datetime import date, datetime, timezone

STATE_VERSION = 1


class StateFileError(ValueError):
    """The state file exists and was read, but it is not a usable state file (corrupt)."""


class StateFileUnusable(Exception):
    """The state file cannot be read or written where it is (permissions, a missing or
    read-only directory): nothing is wrong with it, so it is left alone."""


def check_location(path):
    """Why the state file at C{path} cannot be used, or None.

    An existing file must be readable and writable; its directory must let
    a temporary file be made and renamed over it.
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    if os.path.lexists(path):
        if os.path.isdir(path):
            return f"cannot read {path}: it is a directory"
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            return f"cannot read {path}: {e.strerror or e}"
        if not os.access(path, os.W_OK):
            return f"cannot write {path}: Permission denied"
    if not os.path.isdir(directory):
        return f"cannot write {path}: the directory {directory} does not exist"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"cannot write {path}: the directory {directory} is not writable"
    return None


def keep_aside(path, now: float) -> str:
    """Rename a corrupt state file to C{<path>.corrupt-<UTC time>}, never over an
    earlier one; returns the new name."""
    stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = f"{path}.corrupt-{stamp}"
    aside, n = base, 1
    while os.path.lexists(aside):
        n += 1
        aside = f"{base}-{n}"
    os.rename(path, aside)
    return aside


def _energy(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value >= 0)


def check_plug_state(saved) -> str:
    """What is wrong with one plug's saved counters, or an empty string."""
    if not isinstance(saved, dict):
        return "not a mapping"
    if not _energy(saved.get("total_wh")):
        return "total_wh is not a number >= 0"
    for name, length in (("days", 10), ("months", 7)):
        table = saved.get(name)
        if not isinstance(table, dict):
            return f"{name} is not a mapping"
        for key, wh in table.items():
            if not isinstance(key, str) or len(key) != length or not _energy(wh):
                return f"bad {name} entry {key!r}"
            try:
                date.fromisoformat(key if length == 10 else key + "-01")
            except ValueError:
                return f"bad {name} entry {key!r}"
    return ""


def read_state(path):
    """The parsed state file, or None when it does not exist.

    L{StateFileUnusable} when it cannot be read, L{StateFileError} when it is not JSON.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateFileUnusable(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StateFileError(f"not JSON ({e.__class__.__name__})") from None


def write_state(path, state: dict):
    """Write C{state} atomically: a temporary file in the same directory, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    # allow_nan=False: a non-finite count fails the save (logged), never reaches the file.
    data = json.dumps(state, separators=(",", ":"), sort_keys=True,
                      allow_nan=False).encode("utf-8")
    fd, temporary = tempfile.mkstemp(prefix=".senselink-state-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
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


