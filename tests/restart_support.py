"""A daemon with two mutable plugs and a web section, started and stopped as a user does
(python -m senselink in a subprocess): what survives a restart (tests/test_runvalues.py,
tests/test_savedhistory.py)."""

import os

from tests.processes import Case
from tests.support import free_port

TOKEN = "a-long-enough-token-for-the-tests-0123456789"

CONFIG = """\
state_file: {state}
web: {{listen: "tcp:{web}:interface=127.0.0.1", token: {token}}}
sources:
- mutable:
    plugs:
    - ev: {{alias: EV, mac: "53:75:31:00:0F:01"}}
    - heater: {{alias: Heater, mac: "53:75:31:00:0F:02", power: 10, restore: false}}
"""


class MutableRestartCase(Case):
    """C{self.config} holds L{CONFIG}; C{start()} runs the daemon on it (C{stop(daemon)}, from Case, ends it), answering Kasa on
    C{self.kasa} and the web on C{self.web}, its counters in C{self.state}."""

    def setUp(self):
        self.dir = self.mktemp_dir()
        self.state = os.path.join(self.dir, "state.json")
        self.config = os.path.join(self.dir, "c.yml")
        self.web, self.kasa = free_port(), free_port()
        with open(self.config, "w") as f:
            f.write(CONFIG.format(state=self.state, web=self.web, token=TOKEN))

    def start(self):
        return self.start_senselink(self.config, self.kasa, "Plug heater")

