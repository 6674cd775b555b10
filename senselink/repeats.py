"""Complaints that repeat: the first one is said at once, the rest are counted and summed up.

Pure: the time is passed in. A server that sends 20,000 bad messages gives
one line when the first arrives and one more when its window ends
("... and 19,999 more like it in the last minute"), not 20,000 lines. Keys
are the kinds of complaint a program names (never text from outside), so
their number is bounded by the code.
"""

WINDOW = 60.0    # seconds during which more complaints of a kind are only counted


def _span(seconds):
    return "minute" if seconds == 60 else f"{seconds:g} s"


class Repeats:
    """Counts complaints per key over a window that starts with the one said."""

    def __init__(self, window=WINDOW):
        self.window = window
        self.open = {}     # key -> [window end, count since the line said, last text]

    def note(self, key, text, now):
        """C{[text]} when C{text} is to be said now; C{[]} when it is only counted."""
        entry = self.open.get(key)
        if entry is not None and now < entry[0]:
            entry[1] += 1
            entry[2] = text
            return []
        lines = self._summary(key, entry)
        self.open[key] = [now + self.window, 0, text]
        return lines + [text]

    def due(self, now):
        """C{(key, summary)} of each window with counted complaints that ended by C{now}."""
        lines = []
        for key, entry in list(self.open.items()):
            if now >= entry[0]:
                del self.open[key]
                lines += [(key, line) for line in self._summary(key, entry)]
        return lines

    def flush(self):
        """C{(key, summary)} of each open window with counted complaints (the end)."""
        lines = []
        for key, entry in list(self.open.items()):
            lines += [(key, line) for line in self._summary(key, entry)]
        self.open.clear()
        return lines

    def next_deadline(self):
        """When a window with counted complaints ends, or None."""
        ends = [entry[0] for entry in self.open.values() if entry[1]]
        return min(ends) if ends else None

    def _summary(self, key, entry):
        if entry is None or not entry[1]:
            return []
        return [f"{entry[2]} (and {entry[1]:,} more like it in the last {_span(self.window)})"]
