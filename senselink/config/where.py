"""Where a config problem is: file, line and key path; and the error that lists them all."""

from senselink.excerpt import clip
from senselink.config.yamlmarks import MarkedList, MarkedMap


class ConfigError(Exception):
    """The config is unusable. C{str()} gives one line per problem, each with file:line."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def report(self) -> str:
        """What start-up prints, and a reload logs, for this invalid config."""
        return f"senselink: invalid config:\n{self}"


class Where:
    """File, line and key path of the value being checked; collects problems."""

    def __init__(self, path, problems, line=0, keys=(), secrets=None):
        self.path = path
        self.problems = problems
        self.line = line
        self.keys = keys
        self.secrets = [] if secrets is None else secrets   # (line, key name) of secret values

    def child(self, key, line=None):
        return Where(self.path, self.problems, line or self.line, self.keys + (key,), self.secrets)

    def at(self, container, key):
        """The context of C{container[key]}, with that key's line when known."""
        if isinstance(container, MarkedMap):
            line = container.lines.get(key, container.line)
        elif isinstance(container, MarkedList) and isinstance(key, int) and key < len(container.lines):
            line = container.lines[key]
        else:
            line = self.line
        return self.child(key, line)

    @property
    def name(self):
        out = ""
        for key in self.keys:
            text = clip(str(key))
            out += f"[{text}]" if isinstance(key, int) else (f".{text}" if out else text)
        return out or "(top level)"

    def error(self, message):
        self.problems.append(f"{self.path}:{self.line}: {self.name}: {message}")
