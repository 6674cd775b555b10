"""The shape of the service tree, read from the source with C{ast}: services with one job.

- Only the modules whose job is the daemon's public API keep the daemon: the
  daemon itself, the twistd glue that parents it, the reloader and the web
  interface (which use the public API). Everything else is given the parts
  it reads (the plug hub, the meter, a callable).
- No private attribute of another object is read, Twisted's above all
  (C{TCPServer._port}, C{_HTTP11ClientFactory}, C{_pool._factory}).
- No class is longer than L{MAX_CLASS_LINES}.
"""

import ast
import os

from twisted.trial import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "senselink")

MAX_CLASS_LINES = 250

# Modules that may keep the running daemon in an attribute, and why.
DAEMON_HOLDERS = {
    "senselink.tap": "TwistdRoot parents the daemon under twistd's application",
    "senselink.reload": "the reloader changes the daemon through its public API",
    "senselink.reloadsteps": "a reload's steps change the daemon through its public API",
    "senselink.webswitch": "the web section's listener serves the daemon's public API",
    "senselink.web.interface": "the web interface reads the daemon's public API",
}

# Private methods of our own that one object may call on another: none (the MQTT
# sessions tell their services through events).
OWN_CALLBACKS = set()


def modules():
    for directory, _, names in os.walk(PACKAGE):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                with open(path, encoding="utf-8") as f:
                    yield ".".join(parts), ast.parse(f.read(), path)


def daemon_holders(tree):
    """Lines of C{tree} that keep a value named C{daemon} in an attribute."""
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name)
            and node.value.id == "daemon"
            and any(isinstance(t, ast.Attribute) for t in node.targets)]


def private_reads(tree):
    """C{(line, text)} of each private attribute read on anything but C{self} or C{cls}."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                and not (isinstance(node.value, ast.Call)
                         and getattr(node.value.func, "id", None) == "super")):
            out.append((node.lineno, ast.unparse(node)))
    return out


class StructureTests(unittest.TestCase):

    def test_only_the_public_api_users_keep_the_daemon(self):
        found = {module: lines for module, tree in modules() if (lines := daemon_holders(tree))}
        self.assertEqual(set(found) - set(DAEMON_HOLDERS) - {"senselink.daemon"}, set(),
                         f"modules keeping the daemon: {found}")

    def test_the_holder_check_finds_one(self):
        tree = ast.parse("class A:\n    def __init__(self, daemon):\n        self.d = daemon\n")
        self.assertEqual(daemon_holders(tree), [3])

    def test_no_private_attribute_of_another_object_is_read(self):
        found = [(module, line, text) for module, tree in modules()
                 for line, text in private_reads(tree)
                 if text.rsplit(".", 1)[-1] not in OWN_CALLBACKS]
        self.assertEqual(found, [])

    def test_the_private_read_check_finds_twisteds(self):
        tree = ast.parse("port = service._port.getHost()\nself._own = 1\n")
        self.assertEqual(private_reads(tree), [(1, "service._port")])

    def test_classes_are_small(self):
        found = {}
        for module, tree in modules():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_CLASS_LINES:
                        found[f"{module}.{node.name}"] = lines
        self.assertEqual(found, {})

    def test_the_kasa_side_is_one_service_of_the_tree(self):
        from senselink.config import load_text
        from senselink.service import makeService
        daemon = makeService(load_text("sources:\n- static:\n    plugs:\n    - a: {max_watts: 1}\n",
                                       "x.yml"), port=0, interface="127.0.0.1", environ={})
        self.assertEqual([child.name for child in daemon.kasa], ["udp", "tcp", "totals"])
        self.assertIs(daemon.getServiceNamed("kasa"), daemon.kasa)


class OneWayToFollowPlugsTests(unittest.TestCase):
    """The plug hub is the one subscription mechanism: nothing else touches observers."""

    def test_only_the_hub_and_the_plugs_touch_observers(self):
        found = sorted(module for module, tree in modules()
                       if any(isinstance(node, ast.Attribute) and node.attr == "observers"
                              for node in ast.walk(tree)))
        self.assertEqual(found, ["senselink.plughub", "senselink.plugs"])


def attribute_writes(tree):
    """C{(line, text)} of each assignment to an attribute of anything but C{self}/C{cls}."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for one in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(one, ast.Attribute) and not (
                        isinstance(one.value, ast.Name) and one.value.id in ("self", "cls")):
                    out.append((node.lineno, ast.unparse(one)))
    return out


# Attributes one object may set on another, by module, and why.
TWISTED_KNOBS = {"clock", "maxPersistentPerHost", "displayTracebacks", "factory", "endpoint"}
WRITES_ALLOWED = {
    # records a module defines and fills itself
    "senselink.config.loading": {"settings"},
    "senselink.config.yamlmarks": {"line"},
    "senselink.delivery": {"ring", "at", "last", "first"},
    "senselink.energy.counters": {"saved_wh"},
    "senselink.plugs": {"aggregate"},
    "senselink.probe": {"buffer", "dropped", "interrupted"},
    "senselink.reload": {"sources_stopped", "sources_started", "sources_failed"},
    # ISource.debug: declared settable by whoever runs the sources
    "senselink.runningsources": {"debug"},
    "senselink.sources.mqtt.service": {"debug"},
}


class NoWritesIntoOthersTests(unittest.TestCase):
    """Nothing writes another object's attributes, but Twisted's documented knobs
    (a service's clock, a pool's size, a protocol's factory) and records a module fills."""

    def test_writes_into_other_objects(self):
        found = [(module, line, text) for module, tree in modules()
                 for line, text in attribute_writes(tree)
                 if text.rsplit(".", 1)[-1] not in TWISTED_KNOBS | WRITES_ALLOWED.get(module, set())]
        self.assertEqual(found, [])

    def test_the_check_sees_one(self):
        tree = ast.parse("def f(target):\n    target.wanted = 1\n    self.x = 2\n")
        self.assertEqual(attribute_writes(tree), [(2, "target.wanted")])
