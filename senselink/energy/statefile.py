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
from datetime import date

STATE_VERSION = 1


class StateFileError(ValueError):
    """The state file exists but cannot be used."""


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
    """The parsed state file, or None when it does not exist; L{StateFileError} if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateFileError(f"cannot read: {e.strerror or e}") from None
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


