"""State words: how a raw state compares with the words a config names.

C{on_state_value} and C{off_state_value} match through L{means}; a
C{state_power} table (L{StateWords}) gives a word its watts, matched exactly
or, with C{state_case_sensitive: false}, ignoring case; L{UnknownWords}
logs each word a table lacks once per plug. The power model
(L{senselink.power}) uses these; nothing here computes or sets watts.
"""

from senselink.excerpt import MAX_SHOWN, clip, excerpt
from senselink.log import Logger

log = Logger()

MAX_UNKNOWN_STATES = 64     # distinct unknown state words a plug logs


def state_text(value) -> str:
    """A raw state value as the text it is compared with: JSON spelling for booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


TRUE_WORDS = frozenset(("true", "on", "yes"))
FALSE_WORDS = frozenset(("false", "off", "no"))


def means(state, word) -> bool:
    """Whether a raw C{state} is the configured state C{word} (C{on_state_value}, ...).

    Text compares exactly. A JSON boolean means a truth word of its truth
    (true, on, yes / false, off, no, any case). The JSON numbers 1 and 0 mean
    the words true and false (JSON's own spelling, any case); other numbers
    compare as their text ("3" means 3).
    """
    if word is None:
        return False
    state_type = state.__class__
    if state_type is str:
        return state == word
    if state_type is bool:
        lower = word.lower()
        return lower in (TRUE_WORDS if state else FALSE_WORDS)
    if (state_type is int or state_type is float) and (state == 1 or state == 0):
        lower = word.lower()
        if lower == "true" or lower == "false":
            return (state == 1) == (lower == "true")
    return state_text(state) == word


def folded(state, word) -> bool:
    """Whether C{state}'s text is C{word} ignoring case (state_case_sensitive: false)."""
    return word is not None and state_text(state).casefold() == word.casefold()


class StateWords:
    """A C{state_power} table: state word -> watts (already sane).

    A state's text matches its word; a JSON boolean that matches no word
    means a truth word of its truth, and the numbers 1 and 0 the words true
    and false, as for C{on_state_value} (L{means}).
    """

    __slots__ = ("words", "case_sensitive", "_table", "_truth")

    def __init__(self, words, case_sensitive=True):
        self.words = dict(words)
        self.case_sensitive = case_sensitive
        self._table = {self._key(word): watts for word, watts in self.words.items()}
        # The watts of the first word of each kind: false, true (JSON booleans); 0, 1.
        self._truth = tuple(
            next((watts for word, watts in self.words.items() if word.lower() in kind), None)
            for kind in (FALSE_WORDS, TRUE_WORDS, ("false",), ("true",)))

    def _key(self, text) -> str:
        return text if self.case_sensitive else text.casefold()

    def watts(self, state):
        """The watts of C{state}, or None when no word matches it."""
        watts = self._table.get(self._key(state_text(state)))
        if watts is None:
            state_type = state.__class__
            if state_type is bool:
                return self._truth[state]
            if (state_type is int or state_type is float) and (state == 1 or state == 0):
                return self._truth[2 + (state == 1)]
        return watts


class UnknownWords:
    """The states a plug's C{state_power} lacks, each logged once (at most L{MAX_UNKNOWN_STATES})."""

    __slots__ = ("seen",)

    def __init__(self):
        self.seen = set()

    def note(self, state, plug, words, default):
        """Log C{state} of C{plug} unless logged already (C{words}: its state_power,
        C{default}: its state_power_default)."""
        word = state_text(state)
        key = word[:MAX_SHOWN]
        seen = self.seen
        if key in seen or len(seen) > MAX_UNKNOWN_STATES:
            return
        seen.add(key)
        if len(seen) > MAX_UNKNOWN_STATES:
            log.warn("Plug {plug}: more than {n} unknown states; not logging further ones",
                     plug=plug.id, n=MAX_UNKNOWN_STATES)
            return
        known = clip(", ".join(repr(w) for w in words))
        if default is None:
            log.warn("Plug {plug}: state {state} is not in its state_power ({known}); "
                     "keeping {watts} W", plug=plug.id, state=excerpt(word), known=known,
                     watts=plug.watts)
        else:
            log.info("Plug {plug}: state {state} is not in its state_power ({known}); "
                     "reporting state_power_default {watts} W", plug=plug.id,
                     state=excerpt(word), known=known, watts=default)
