"""Command line: ``python -m senselink [run options] | check | generate | --version``.

``python -m senselink -c config.yml`` runs the daemon in the foreground (the
original SenseLink's command line); it takes the same options as
``twistd senselink``.
"""

from types import MappingProxyType
import secrets
import sys

from twisted.python import usage

import senselink
from senselink import config as _config
from senselink.excerpt import shown_name
from senselink.identities import Identities, Reported, ghost_warnings, identity_table

USAGE = """\
usage: python -m senselink [-c CONFIG] [-p PORT] [--interface ADDR] [-q] [-l LEVEL]
                          [--web-port PORT] [--ingress-port PORT]
       python -m senselink check [-c CONFIG]
       python -m senselink identities [-c CONFIG]
       python -m senselink generate
       python -m senselink probe [--target HOST] [--port P] [--timeout S] [--count N]
       python -m senselink --version

Without a command, runs the daemon in the foreground (like `twistd -n senselink`).
  check     validate the config and print the plug table; exit code 0 when valid
  identities  list every MAC Sense was answered with (from the state file): its plug,
            alias, first and last time answered, and the plug reporting it now
  generate  print a fresh MAC address and device id to paste into a config
  probe     play the Sense monitor: list the plugs that answer (broadcast by default);
            exit code 0 when at least one plug answered; Ctrl-C prints the table so
            far (exit code 130)
"""


class CheckOptions(usage.Options):
    optParameters = [["config", "c", None, "YAML config file"]]

    def postOptions(self):
        import os
        if self["config"] is None:
            self["config"] = os.environ.get("CONFIG_LOCATION") or _config.DEFAULT_PATH


def plug_table(config) -> str:
    """One row a plug; ids and aliases clipped (L{shown_name})."""
    rows = [("ID", "ALIAS", "MAC", "SOURCE", "REPORTED")]
    for plug in config.plugs.values():
        holder = config.aggregate_of(plug.id)
        rows.append((shown_name(plug.id), shown_name(plug.settings.alias or plug.id),
                     plug.settings.mac,
                     plug.kind, "yes" if holder is None else f"in aggregate {shown_name(holder)}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in rows)


def load_for(command, argv):
    """C{(config, None)} from the command line of C{command} (C{-c}), or C{(None, exit
    code)} after saying why on stderr: 2 for a usage error, 1 for an invalid config."""
    options = CheckOptions()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        print(f"senselink {command}: {e}", file=sys.stderr)
        return None, 2
    try:
        return _config.load(options["config"]), None
    except _config.ConfigError as e:
        print(f"{e}", file=sys.stderr)
        print(f"senselink {command}: {options['config']} is not valid", file=sys.stderr)
        return None, 1


def check(argv) -> int:
    config, failed = load_for("check", argv)
    if config is None:
        return failed
    print(plug_table(config))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from senselink.energy.service import state_file_problem
    problem = state_file_problem(config.settings)
    if problem is not None:
        print(f"{config.path}: state_file: {problem}", file=sys.stderr)
        print(f"senselink check: {config.path} is valid, but the daemon would not start",
              file=sys.stderr)
        return 1
    known, _, problems = saved_identities(config)
    for words in problems + ghost_warnings(known, configured_plugs(config)):
        print(f"warning: {words}", file=sys.stderr)
    reported = len(config.reported())
    plugs = len(config.plugs)
    print(f"\n{config.path}: valid; {plugs} plug{'' if plugs == 1 else 's'}, "
          f"{reported} reported to Sense")
    return 0


def configured_plugs(config):
    """The config's reported plugs as L{senselink.identities.Reported}, in order."""
    return [Reported(plug.id, plug.settings.alias or plug.id, plug.settings.mac.upper(), n)
            for n, plug in enumerate(config.reported())]


def saved_identities(config):
    """C{(known, path, problems)}: the identities the config's state file keeps (MAC ->
    Identity), its path (None: C{state_file: false}) and the words of what could not be read.
    Nothing is written."""
    from senselink.energy.service import configured_state_file
    from senselink.energy.statefile import (StateFileError, StateFileUnusable, parse_state,
                                            read_state)
    identities = Identities()
    path = configured_state_file(config.settings)
    if path is None:
        return identities.known, None, []
    try:
        data = read_state(path)
        state = parse_state(data) if data is not None else {}
    except (StateFileError, StateFileUnusable) as e:
        return identities.known, path, [f"state file {path}: {e}"]
    section = state.get(identities.name) if isinstance(state, dict) else None
    return identities.known, path, identities.restore(section)


def identities(argv) -> int:
    config, failed = load_for("identities", argv)
    if config is None:
        return failed
    known, path, problems = saved_identities(config)
    for words in problems:
        print(f"warning: {words}", file=sys.stderr)
    if path is None:
        print("senselink identities: state_file is false: no identities are kept",
              file=sys.stderr)
        return 1
    if not known:
        print(f"No MAC has been answered to Sense yet (state file {path})")
        return 0
    print(identity_table(known, configured_plugs(config)))
    print(f"\n{len(known)} MAC{'' if len(known) == 1 else 's'} answered to Sense, from {path}")
    return 0


def generate(argv) -> int:
    # TP-Link's OUI, as the original's generator used; the rest is random.
    mac = "50:C7:BF:" + ":".join(f"{b:02X}" for b in secrets.token_bytes(3))
    print(f"mac: {mac}")
    print(f"device_id: {secrets.token_hex(20).upper()}")
    return 0


def run(argv) -> int:
    from senselink import tap
    options = tap.Options()
    try:
        options.parseOptions(argv)
    except usage.UsageError as e:
        print(USAGE, file=sys.stderr)
        print(f"senselink: {e}", file=sys.stderr)
        return 2
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver
    from senselink.log import filtered
    globalLogBeginner.beginLoggingTo([filtered(textFileLogObserver(sys.stdout), options.level)])
    service = tap.makeService(options)
    service.privilegedStartService()
    stop = reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    failed = []

    def start():
        # A start that fails (the state file is unusable) raises SystemExit with one
        # line, as under twistd: print it and exit 1, without stopping what never started.
        try:
            service.startService()
        except SystemExit as e:
            reactor.removeSystemEventTrigger(stop)
            failed.append(e.code)
            reactor.stop()
    reactor.callWhenRunning(start)
    reactor.run()
    if failed:
        print(failed[0], file=sys.stderr)
        return 1
    return 0


def probe(argv) -> int:
    from senselink import probe as _probe
    return _probe.main(argv)


COMMANDS = MappingProxyType({"check": check, "generate": generate, "probe": probe,
                             "identities": identities})


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("--version", "-V", "version"):
        print(f"senselink {senselink.__version__}")
        return 0
    if argv and argv[0] in ("--help", "-h", "help"):
        print(USAGE)
        return 0
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
