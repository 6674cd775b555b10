"""The local copy of Home Assistant's entity states, kept up to date from its events.

Pure: no I/O. A cache maps entity ids to state objects shaped like a
C{get_states} entry (C{entity_id}, C{state}, C{attributes}, C{last_changed},
C{last_updated}, C{context}), so keypaths read the same whichever
subscription filled it: C{subscribe_entities} (compressed C{a}/C{c}/C{r}
diffs) or C{subscribe_events} (C{state_changed}).
"""

def _context(value):
    return dict(value) if isinstance(value, dict) else {"id": value}


def _part(event, key, shape):
    """C{event[key]} when it has the C{shape} Home Assistant sends, else empty; and whether
    it was there with another shape."""
    value = event.get(key)
    if value is None:
        return shape(), False
    if isinstance(value, shape):
        return value, False
    return shape(), True


def apply_entities_event(cache: dict, event: dict, wanted):
    """Apply one C{subscribe_entities} event to C{cache} (entity id -> state object).

    Only entities in C{wanted} are kept or touched: a server that sends
    others (added, changed or removed) cannot make the cache grow.

    Returns the entity ids whose state object changed or was removed, in
    order, and whether part of the event had a shape Home Assistant never
    sends (that part is skipped).
    """
    touched = []
    added, bad_a = _part(event, "a", dict)
    removed, bad_r = _part(event, "r", list)
    changed, bad_c = _part(event, "c", dict)
    malformed = bad_a or bad_r or bad_c
    for eid, cs in added.items():
        if eid not in wanted:
            continue
        if not isinstance(cs, dict):
            malformed = True
            continue
        attributes = cs.get("a")
        cache[eid] = {
            "entity_id": eid, "state": cs.get("s"),
            "attributes": dict(attributes) if isinstance(attributes, dict) else {},
            "last_changed": cs.get("lc"), "last_updated": cs.get("lu", cs.get("lc")),
            "context": _context(cs.get("c")),
        }
        touched.append(eid)
    for eid in removed:
        if isinstance(eid, str) and eid in wanted:
            cache.pop(eid, None)
            touched.append(eid)
    for eid, diff in changed.items():
        entry = cache.get(eid)
        if entry is None:
            continue
        if not isinstance(diff, dict):
            malformed = True
            continue
        plus = diff.get("+")
        plus = plus if isinstance(plus, dict) else {}
        if "s" in plus:
            entry["state"] = plus["s"]
        if "lc" in plus:
            entry["last_changed"] = entry["last_updated"] = plus["lc"]
        elif "lu" in plus:
            entry["last_updated"] = plus["lu"]
        if "c" in plus:
            entry["context"] = {**entry["context"], **_context(plus["c"])}
        if isinstance(plus.get("a"), dict):
            entry["attributes"] = {**entry["attributes"], **plus["a"]}
        minus = diff.get("-")
        gone = minus.get("a") if isinstance(minus, dict) else None
        for key in gone if isinstance(gone, list) else ():
            if isinstance(key, str):
                entry["attributes"].pop(key, None)
        touched.append(eid)
    return touched, malformed


def apply_state_changed(cache: dict, event: dict, wanted):
    """Apply one C{state_changed} event to C{cache} if its entity is in C{wanted}.

    Returns the entity id whose state object changed or was removed, or None.
    """
    data = event.get("data")
    if event.get("event_type") != "state_changed" or not isinstance(data, dict):
        return None
    eid = data.get("entity_id")
    if not isinstance(eid, str) or eid not in wanted:
        return None
    new_state = data.get("new_state")
    if isinstance(new_state, dict):
        cache[eid] = new_state
    else:
        cache.pop(eid, None)
    return eid


class EntityCache:
    """The states of the entities a session follows (and of no others), by entity id."""

    def __init__(self, entity_ids):
        self.entity_ids = sorted(entity_ids)
        self.wanted = frozenset(entity_ids)
        self.states = {}           # entity id -> state object (get_states shape)

    def entities_event(self, event):
        """A C{subscribe_entities} event: the entity ids touched, and whether part of it
        was misshapen (see L{apply_entities_event})."""
        return apply_entities_event(self.states, event, self.wanted)

    def state_changed(self, event):
        """A C{state_changed} event: the entity id touched, or None."""
        return apply_state_changed(self.states, event, self.wanted)

    def all_states(self, result):
        """A C{get_states} result (a list): the wanted entity ids found, in order."""
        found = []
        for entry in result:
            eid = entry.get("entity_id") if isinstance(entry, dict) else None
            if isinstance(eid, str) and eid in self.wanted:
                self.states[eid] = entry
                found.append(eid)
        return found

    def missing(self):
        """The wanted entity ids without a state, in name order."""
        return tuple(eid for eid in self.entity_ids if eid not in self.states)
