"""twistd glue: command-line options and C{makeService} for C{twistd senselink}."""

import os

from twisted.python import usage

from senselink import config as _config
from senselink import log as _log
from senselink import service as _service
from senselink.service import DEFAULT_INTERFACE, DEFAULT_PORT, parse_interface

FALSE_WORDS = {"0", "false", "no", "off"}


def _port(value):
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return port


class Options(usage.Options):
    synopsis = "[-c CONFIG] [-p PORT] [--interface ADDR] [-q] [-l LEVEL]"
    longdesc = ("Serve virtual TP-Link Kasa HS110 plugs to a Sense Home Energy Monitor. "
                "Environment: CONFIG_LOCATION (config path), LOGLEVEL, SENSE_RESPONSE=false "
                "(same as --quiet).")
    optParameters = [
        ["config", "c", None,
         f"YAML config file (default: $CONFIG_LOCATION, else {_config.DEFAULT_PATH})"],
        ["port", "p", DEFAULT_PORT, "UDP and TCP port to answer on", _port],
        ["interface", None, DEFAULT_INTERFACE, "Address to listen on (default: all IPv4)"],
        ["log-level", "l", None, "DEBUG, INFO, WARNING or ERROR (default: $LOGLEVEL, else INFO)"],
    ]
    optFlags = [
        ["quiet", "q", "Receive and log requests but never answer"],
    ]

    def postOptions(self):
        env = os.environ
        if self["config"] is None:
            self["config"] = env.get("CONFIG_LOCATION") or _config.DEFAULT_PATH
        level = self["log-level"] or env.get("LOGLEVEL") or "INFO"
        try:
            _log.set_level(level)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        self["log-level"] = level.upper()
        if env.get("SENSE_RESPONSE", "true").strip().lower() in FALSE_WORDS:
            self["quiet"] = True
        try:
            self["interface"] = parse_interface(self["interface"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options):
    """Load and validate the config, then build the service tree.

    A bad config ends the program with one line per problem (file:line: key:
    what was expected) and exit code 1, before anything listens.
    """
    try:
        config = _config.load(options["config"])
    except _config.ConfigError as e:
        raise SystemExit(f"senselink: invalid config:\n{e}") from None
    parent = getattr(options, "parent", None)
    foreground = bool(parent["nodaemon"]) if parent is not None else True
    return _service.makeService(config, port=options["port"], interface=options["interface"],
                                respond=not options["quiet"], foreground=foreground)
