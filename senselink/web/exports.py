"""CSV files of a plug's history, for spreadsheets: its last 24 hours per minute and its
daily kWh (C{/api/plugs/<id>/history.csv}, C{/api/plugs/<id>/days.csv}).

Times are UTC in ISO 8601 with a C{Z}, and seconds since the epoch beside them, so that a
spreadsheet and a script both read them; days are the local days of the energy counters.
"""

import csv
import io
from datetime import datetime, timezone

DAYS = 365                   # daily kWh in days.csv (the counters keep every day)


def _text(header, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _utc(t) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_csv(history, now) -> bytes:
    """A plug's last 24 hours per minute (L{senselink.history.PlugHistory}, or None)."""
    rows = []
    if history is not None:
        rows = [(_utc(t), int(t), f"{low:.2f}", f"{mean:.2f}", f"{high:.2f}")
                for t, low, mean, high in history.minutes(now)]
    return _text(("minute_utc", "epoch_seconds", "min_watts", "mean_watts", "max_watts"), rows)


def days_csv(counter, now) -> bytes:
    """A plug's kWh per local day over the last L{DAYS} days (its energy counter, or None),
    from its first day with energy; today last, so far."""
    rows = []
    if counter is not None:
        days = counter.daily(DAYS, now)
        first = next((i for i, (_, kwh) in enumerate(days) if kwh > 0), len(days) - 1)
        rows = [(day, f"{kwh:.6f}") for day, kwh in days[first:]]
    return _text(("date", "kwh"), rows)


def filename(plug_id, what) -> bytes:
    """The download's name: the plug id with only safe characters."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in plug_id)
    return f"senselink-{safe[:60]}-{what}.csv".encode("ascii")
