"""The package's import structure: no import cycles, no registration by import.

Read from the source with C{ast}, nothing is imported: an import anywhere in a
module (at the top or inside a function) is an edge of the graph, since a
function-level import only delays a cycle to run time.
"""

import ast
import os

from twisted.trial import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "senselink")

# Cycles that exist and are to be removed. Each is the set of modules of one
# cycle (a strongly connected component of the import graph). When you remove
# one, remove it here too: the test fails while this set and the code disagree.
# (senselink.service <-> senselink.web was the last one: the web interface
# became a package that imports neither the service nor the daemon.)
KNOWN_CYCLES_TO_REMOVE = set()

MAX_CONFIG_MODULE_LINES = 400


def module_files(package=PACKAGE, root=ROOT):
    """Module name -> file, for every module of the package."""
    out = {}
    for directory, _, names in os.walk(package):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                out[".".join(parts)] = path
    return out


def imported_modules(module, path, modules):
    """The modules of C{modules} that C{module} (its source at C{path}) imports."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                name = f"{source}.{alias.name}"
                if name in modules:          # "from pkg import module"
                    found.add(name)
                elif source in modules:      # "from module import name"
                    found.add(source)
    found.discard(module)
    return found


def import_graph():
    files = module_files()
    return {module: imported_modules(module, path, files) for module, path in files.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], set()

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                out.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def module_level_nodes(tree):
    """The nodes run when the module is imported: all but the bodies of functions."""
    pending = [tree]
    while pending:
        node = pending.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                pending.append(child)


def called_name(call):
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


class ImportGraphTests(unittest.TestCase):

    def test_graph_is_read_correctly(self):
        graph = import_graph()
        schema = graph["senselink.config.schema"]
        self.assertIn("senselink.config.fields", schema)           # from module import name
        self.assertIn("senselink.config.sections", schema)         # from package import module
        self.assertIn("senselink.sources", graph["senselink.config.loading"])
        self.assertIn("senselink.sources.kind", graph["senselink.sources.static"])
        self.assertNotIn("senselink.sources.hass", graph["senselink.sources"])   # imported by name

    def test_relative_imports(self):
        root = self.mktemp()
        files = {"pkg/__init__.py": "from . import a\n",
                 "pkg/a.py": "from .sub import b\nfrom .sub.b import name\n",
                 "pkg/sub/__init__.py": "from .. import a\n",
                 "pkg/sub/b.py": "def f():\n    from ..a import thing\n    from . import other\n"}
        for name, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        modules = module_files(os.path.join(root, "pkg"), root)
        graph = {m: imported_modules(m, path, modules) for m, path in modules.items()}
        self.assertEqual(graph, {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": {"pkg.a"},
                                 "pkg.sub.b": {"pkg.a", "pkg.sub"}})

    def test_no_import_cycles(self):
        found = cycles(import_graph())
        new = found - KNOWN_CYCLES_TO_REMOVE
        self.assertEqual(new, set(), "import cycles: " + "; ".join(
            " <-> ".join(sorted(cycle)) for cycle in sorted(new, key=sorted)))
        gone = KNOWN_CYCLES_TO_REMOVE - found
        self.assertEqual(gone, set(), "these cycles are gone: remove them from "
                                      "KNOWN_CYCLES_TO_REMOVE")

    def test_cycles_are_found(self):
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
        self.assertEqual(cycles(graph), {frozenset("abc")})


class ModuleRulesTests(unittest.TestCase):

    def test_config_modules_are_small(self):
        files = module_files()
        config = [m for m in files if m == "senselink.config" or m.startswith("senselink.config.")]
        self.assertGreater(len(config), 5)
        for module in config:
            with open(files[module], encoding="utf-8") as f:
                lines = len(f.readlines())
            self.assertLessEqual(lines, MAX_CONFIG_MODULE_LINES, f"{module}: {lines} lines")

    def test_no_registration_at_import(self):
        """Nothing registers into another module by being imported, or imports by name at import."""
        for module, path in sorted(module_files().items()):
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and called_name(node) == "add_top_level":
                    self.fail(f"{module}:{node.lineno}: add_top_level()")
            for node in module_level_nodes(tree):
                if isinstance(node, ast.Call) and called_name(node) in ("import_module",
                                                                        "__import__"):
                    self.fail(f"{module}:{node.lineno}: {called_name(node)}() at module level")

    def test_no_module_level_mutable_state(self):
        """No module keeps state that changes: module-level containers are immutable
        (tuples, frozensets, MappingProxyType) and no function rebinds a global."""
        mutable = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
        factories = {"list", "dict", "set", "defaultdict", "OrderedDict", "deque", "Counter",
                     "bytearray"}
        for module, path in sorted(module_files().items()):
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for node in tree.body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    value = node.value
                    if isinstance(value, mutable) or (isinstance(value, ast.Call)
                                                      and called_name(value) in factories):
                        self.fail(f"{module}:{node.lineno}: a mutable container at module level")
            for node in ast.walk(tree):
                if isinstance(node, ast.Global):
                    self.fail(f"{module}:{node.lineno}: global {', '.join(node.names)}")

    def test_plugs_know_nothing_of_the_wire_or_energy(self):
        graph = import_graph()
        self.assertEqual(graph["senselink.plugs"], set())

    def test_only_the_twistd_glue_imports_the_service_tree(self):
        graph = import_graph()
        importers = {module for module, imports in graph.items() if "senselink.service" in imports}
        self.assertEqual(importers, {"senselink.tap"})

    def test_modules_are_small(self):
        """One concern per module: none over 400 lines."""
        for module, path in sorted(module_files().items()):
            with open(path, encoding="utf-8") as f:
                lines = len(f.readlines())
            self.assertLessEqual(lines, 400, f"{module}: {lines} lines")

    def test_no_test_module_imports_another(self):
        """Shared test helpers live in modules that are not test modules."""
        tests = os.path.join(ROOT, "tests")
        for module, path in sorted(module_files(tests, ROOT).items()):
            imported = imported_modules(module, path, module_files(tests, ROOT))
            bad = sorted(m for m in imported if m.rsplit(".", 1)[-1].startswith("test_"))
            self.assertEqual(bad, [], f"{module} imports test modules")


def private_names_used_across_modules(files):
    """C{module:line: name} for each private name (C{_x}, not C{__x__}) that a module
    of C{files} imports from another of the package, or reads as an attribute of an
    imported module of the package (C{module._x})."""
    found = []
    for module, path in sorted(files.items()):
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        imported = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("senselink"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{module}:{node.lineno}: {alias.name}")
                    imported[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("senselink"):
                        imported[alias.asname or alias.name.split(".")[0]] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in imported and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"{module}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


class PrivateNameTests(unittest.TestCase):
    def test_no_private_name_is_imported_from_another_module(self):
        """What another module needs is public and named so."""
        files = module_files()
        files["twisted.plugins.senselink_plugin"] = os.path.join(
            ROOT, "twisted", "plugins", "senselink_plugin.py")
        self.assertEqual(private_names_used_across_modules(files), [])

    def test_the_check_finds_both_forms(self):
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "example.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write("from senselink.config.fields import _hidden, shown\n"
                    "from senselink import config\n"
                    "config._other(shown)\n")
        self.assertEqual(private_names_used_across_modules({"example": path}),
                         ["example:1: _hidden", "example:3: config._other"])
