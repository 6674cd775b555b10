"""The validated config: L{Config}, its L{SourceConfig}s and L{PlugConfig}s."""

from dataclasses import dataclass, field


@dataclass
class PlugConfig:
    id: str
    kind: str
    options: dict
    line: int
    source: "SourceConfig" = None
    # The context of the plug's settings (a Where): cross-key checks report with it.
    where: object = field(default=None, repr=False, compare=False)
    # The typed settings (a frozen dataclass of the kind's plug_settings), once valid.
    settings: object = None
    max_plug_watts: float = None       # the config's ceiling, for the plug's power model


@dataclass
class SourceConfig:
    kind: str
    options: dict
    plugs: list
    line: int
    index: int
    # The context of the source's settings (a Where): cross-key checks report with it.
    where: object = field(default=None, repr=False, compare=False)
    settings: object = None            # the typed settings (the kind's source_settings)
    # Keys written with a value that was refused (its problem is reported): the settings
    # hold their defaults, which a kind's checks across keys should not judge.
    refused: frozenset = frozenset()


@dataclass
class Config:
    path: str
    sources: list
    plugs: dict            # plug id -> PlugConfig, in config order
    options: dict = field(default_factory=dict)   # validated top-level keys
    warnings: list = field(default_factory=list)
    secrets: list = field(default_factory=list)   # (line, key) of secrets written in the file
    settings: object = None        # the typed top-level settings (schema.DaemonSettings)

    @property
    def target(self):
        return self.settings.target

    def aggregate_of(self, plug_id):
        """The id of the aggregate that holds C{plug_id}, or None."""
        for plug in self.plugs.values():
            if plug_id in plug.settings.elements:
                return plug.id
        return None

    def reported(self):
        held = {e for p in self.plugs.values() for e in p.settings.elements}
        return [p for p in self.plugs.values() if p.id not in held]
