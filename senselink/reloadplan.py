"""What a reload would change, worked out before anything changes: L{plan}.

C{plan(old_config, new_config)} compares two validated configs and nothing
else (no reactor, no daemon, no I/O) and says which plugs are added,
removed, kept as they were or kept with changes (and which changes: alias,
MAC, kind, power settings), which sources keep their connection, which are
replaced (the same plugs under other settings, a broker moved to another
host: stopped, then started), stopped or started, which top-level sections
changed and which listeners move. L{senselink.reloadsteps} applies a plan.
"""

from dataclasses import dataclass

from senselink.config.settings import differences, values


@dataclass(frozen=True)
class PlugChange:
    """A plug in both configs whose settings differ."""
    id: str
    keys: tuple = ()         # its settings keys whose value changed, in name order
    kind: tuple = ()         # (old kind, new kind) when its kind changed
    alias: tuple = ()        # (old alias, new alias) when the alias Sense sees changed
    rebuilt: bool = False    # a new plug object: a new MAC, or plain <-> aggregate
    reset: bool = False      # the same object, its value reset: its starting value changed


@dataclass(frozen=True)
class SourceChange:
    """A source replaced by one of the same kind for the same plugs: stopped, then started.
    C{old} and C{new} index the sources of the old and the new config."""
    old: int
    new: int
    keys: tuple = ()         # source settings keys that changed ("host": another broker)
    plugs: tuple = ()        # plug ids of either source whose settings or membership changed


@dataclass(frozen=True)
class ReloadPlan:
    """Everything a reload changes; ids in the new config's order (removed: the old's).
    Sources are indexes into C{config.sources} of the old or the new config."""
    plug_ids: tuple = ()           # every plug id of the new config, in its order
    plugs_added: tuple = ()        # ids new to the config
    plugs_removed: tuple = ()      # ids gone from it
    plugs_unchanged: tuple = ()    # ids whose settings and kind are equal
    plugs_changed: tuple = ()      # PlugChange, in config order
    sources_kept: tuple = ()       # (old, new): equal settings, the service and connection stay
    sources_replaced: tuple = ()   # SourceChange
    sources_stopped: tuple = ()    # old indexes of sources without a successor
    sources_started: tuple = ()    # new indexes of sources without a predecessor
    sections: tuple = ()           # top-level keys whose value changed, in name order
    listeners_moved: tuple = ()    # ("web",) when the web section's listen changed

    @property
    def plugs_rebuilt(self) -> tuple:
        """Ids of plugs that need a new object (a new MAC, plain <-> aggregate)."""
        return tuple(change.id for change in self.plugs_changed if change.rebuilt)

    @property
    def plugs_kept(self) -> tuple:
        """Ids of plugs whose running object stays (unchanged, or changed in place)."""
        new = set(self.plugs_added + self.plugs_rebuilt)
        return tuple(plug_id for plug_id in self.plug_ids if plug_id not in new)

    @property
    def sources_to_stop(self) -> tuple:
        """Old indexes of the sources a reload stops (replaced or removed)."""
        return tuple(sorted(self.sources_stopped + tuple(c.old for c in self.sources_replaced)))

    @property
    def sources_to_start(self) -> tuple:
        """New indexes of the sources a reload makes (replacements or new)."""
        return tuple(sorted(self.sources_started + tuple(c.new for c in self.sources_replaced)))

    @property
    def changes_nothing(self) -> bool:
        return not (self.plugs_added or self.plugs_removed or self.plugs_changed
                    or self.sources_replaced or self.sources_stopped or self.sources_started
                    or self.sections)


def _default_kinds(kinds):
    if kinds is None:
        from senselink.sources import default_kinds
        kinds = default_kinds()
    return kinds


def source_settings(source):
    """What a source's service is built from: kind, options, and each plug's id and settings."""
    return (source.kind, values(source.settings),
            [(plug.id, values(plug.settings)) for plug in source.plugs])


def changed_keys(old, new) -> tuple:
    """Keys of two settings (of one class or not) whose values differ, in name order."""
    if type(old) is type(new):
        return tuple(differences(old, new))
    before, after = dict(values(old)), dict(values(new))
    return tuple(sorted(key for key in before.keys() | after.keys()
                        if before.get(key) != after.get(key)))


def plug_change(old, new, kinds) -> PlugChange:
    """How plug config C{new} differs from C{old} (the same id), or None when it does not."""
    keys = changed_keys(old.settings, new.settings)
    kind = (old.kind, new.kind) if old.kind != new.kind else ()
    if not keys and not kind:
        return None
    before, after = old.settings, new.settings
    rebuilt = (before.mac.upper() != after.mac.upper()
               or bool(before.elements) != bool(after.elements))
    alias = ((before.alias or old.id, after.alias or new.id)
             if (before.alias or old.id) != (after.alias or new.id) else ())
    same_start = not kind and kinds[old.kind].initial(old) == kinds[new.kind].initial(new)
    reset = not rebuilt and not after.elements and not same_start
    return PlugChange(new.id, keys, kind, alias, rebuilt, reset)


def _plan_sources(old_sources, new_sources):
    old_left = list(range(len(old_sources)))
    kept, replaced, started = [], [], []
    unmatched = []
    for index, source in enumerate(new_sources):
        settings = source_settings(source)
        match = next((i for i in old_left if source_settings(old_sources[i]) == settings), None)
        if match is None:
            unmatched.append(index)
            continue
        old_left.remove(match)
        kept.append((match, index))
    for index in unmatched:
        source = new_sources[index]
        ids = {plug.id for plug in source.plugs}
        match = next((i for i in old_left if old_sources[i].kind == source.kind
                      and ids & {plug.id for plug in old_sources[i].plugs}), None)
        if match is None:
            started.append(index)
            continue
        old_left.remove(match)
        old = old_sources[match]
        before = dict((plug.id, values(plug.settings)) for plug in old.plugs)
        after = dict((plug.id, values(plug.settings)) for plug in source.plugs)
        plugs = tuple(sorted(i for i in before.keys() | after.keys()
                             if before.get(i) != after.get(i)))
        replaced.append(SourceChange(match, index, changed_keys(old.settings, source.settings),
                                     plugs))
    return tuple(kept), tuple(replaced), tuple(old_left), tuple(started)


def _listen(settings):
    web = settings.web
    return None if web is None else web.listen


def plan(old_config, new_config, kinds=None) -> ReloadPlan:
    """What running C{new_config} instead of C{old_config} changes (both validated configs).

    C{kinds} (default: the built-in source kinds) tell each plug's starting value.
    """
    kinds = _default_kinds(kinds)
    old_plugs, new_plugs = old_config.plugs, new_config.plugs
    added, unchanged, changed = [], [], []
    for plug_id, new in new_plugs.items():
        old = old_plugs.get(plug_id)
        if old is None:
            added.append(plug_id)
            continue
        change = plug_change(old, new, kinds)
        if change is None:
            unchanged.append(plug_id)
        else:
            changed.append(change)
    removed = tuple(plug_id for plug_id in old_plugs if plug_id not in new_plugs)
    kept, replaced, stopped, started = _plan_sources(old_config.sources, new_config.sources)
    moved = ("web",) if _listen(old_config.settings) != _listen(new_config.settings) else ()
    return ReloadPlan(
        plugs_added=tuple(added), plugs_removed=removed, plugs_unchanged=tuple(unchanged),
        plugs_changed=tuple(changed), sources_kept=kept, sources_replaced=replaced,
        sources_stopped=stopped, sources_started=started,
        sections=tuple(differences(old_config.settings, new_config.settings)),
        listeners_moved=moved, plug_ids=tuple(new_plugs))
