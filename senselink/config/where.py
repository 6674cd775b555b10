"""Where a config problem is: file, line and key path; and the error that lists them all."""

from senselink.config.fields import _clip
from senselink.config.yamlmarks import _List, _Map


class ConfigError(Exception):
    """The config is unusable. C{str()} gives one line per problem, each with file:line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def report(self) -> str:
        """What start-up prints, and a reload logs, for this invalid config."""
        return f"senselink: invalid config:\n{self}"


class _Where:
    """File, line and key path of the value being checked; collects problems."""

    def __init__(self, path, problems, line=0, keys=(), secrets=None):
        self.path = path
        self.problems = problems
        self.line = line
        self.keys = keys
        self.secrets = [] if secrets is None else secrets   # (line, key name) of secret values

    def child(self, key, line=None):
        return _Where(self.path, self.problems, line or self.line, self.keys + (key,), self.secrets)

    def at(self, container, key):
        """The context of C{container[key]}, with that key's line when known."""
        if isinstance(container, _Map):
            line = container.lines.get(key, container.line)
        elif isinstance(container, _List) and isinstance(key, int) and key < len(container.lines):
            line = container.lines[key]
        else:
            line = self.line
        return self.child(key, line)

    @property
    def name(self):
        out = ""
        for key in self.keys:
            text = _clip(str(key))
            out += f"[{text}]" if isinstance(key, int) else (f".{text}" if out else text)
        return out or "(top level)"

    def error(self, message):
        self.problems.append(f"{self.path}:{self.line}: {self.name}: {message}")
