"""The local copy of Home Assistant's entity states, kept up to date from its events.

Pure: no I/O. A cache maps entity ids to state objects shaped like a
C{get_states} entry (C{entity_id}, C{state}, C{attributes}, C{last_changed},
C{last_updated}, C{context}), so keypaths read the same whichever
subscription filled it: C{subscribe_entities} (compressed C{a}/C{c}/C{r}
diffs) or C{subscribe_events} (C{state_changed}).
"""

def _context(value):
    return dict(value) if isinstance(value, dict) else {"id": value}


def apply_entities_event(cache: dict, event: dict):
    """Apply one C{subscribe_entities} event to C{cache} (entity id -> state object).

    Returns the entity ids whose state object changed or was removed, in order.
    """
    touched = []
    for eid, cs in (event.get("a") or {}).items():
        if not isinstance(cs, dict):
            continue
        cache[eid] = {
            "entity_id": eid, "state": cs.get("s"), "attributes": dict(cs.get("a") or {}),
            "last_changed": cs.get("lc"), "last_updated": cs.get("lu", cs.get("lc")),
            "context": _context(cs.get("c")),
        }
        touched.append(eid)
    for eid in event.get("r") or ():
        if isinstance(eid, str):
            cache.pop(eid, None)
            touched.append(eid)
    for eid, diff in (event.get("c") or {}).items():
        entry = cache.get(eid)
        if entry is None or not isinstance(diff, dict):
            continue
        plus = diff.get("+") or {}
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
        for key in (diff.get("-") or {}).get("a") or ():
            entry["attributes"].pop(key, None)
        touched.append(eid)
    return touched


def apply_state_changed(cache: dict, event: dict, wanted):
    """Apply one C{state_changed} event to C{cache} if its entity is in C{wanted}.

    Returns the entity id whose state object changed or was removed, or None.
    """
    data = event.get("data")
    if event.get("event_type") != "state_changed" or not isinstance(data, dict):
        return None
    eid = data.get("entity_id")
    if eid not in wanted:
        return None
    new_state = data.get("new_state")
    if isinstance(new_state, dict):
        cache[eid] = new_state
    else:
        cache.pop(eid, None)
    return eid
