"""The web package's import rules: loaded only when configured, no cycles, no daemon import."""

import ast
import os
import subprocess
import sys

from twisted.trial import unittest

import senselink

PACKAGE = os.path.dirname(os.path.abspath(senselink.__file__))
WEB = os.path.join(PACKAGE, "web")


def imports(path, module):
    """C{(name, lineno, at_module_level)} of every senselink module that C{path} imports."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    top = set(tree.body)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[:-node.level]
                base = ".".join(parts + ([base] if base else []))
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.startswith("senselink"):
                found.append((name, node.lineno, node in top))
    return found


def web_modules():
    for filename in sorted(os.listdir(WEB)):
        if filename.endswith(".py"):
            name = filename[:-3]
            module = "senselink.web" if name == "__init__" else f"senselink.web.{name}"
            yield module, os.path.join(WEB, filename)


class ImportTests(unittest.TestCase):

    def test_no_daemon_or_service_import(self):
        for module, path in web_modules():
            for name, line, _ in imports(path, module):
                for forbidden in ("senselink.daemon", "senselink.service"):
                    self.assertFalse(name == forbidden or name.startswith(forbidden + "."),
                                     f"{path}:{line} imports {name}")

    def test_no_cycles_between_web_modules(self):
        modules = dict(web_modules())
        graph = {module: {name for name, _, _ in imports(path, module) if name in modules}
                 for module, path in modules.items()}
        # The package re-exports make_service: its own imports are not a cycle back.
        graph = {m: deps - {"senselink.web"} for m, deps in graph.items()}
        done, path = set(), []

        def visit(module):
            if module in path:
                self.fail("import cycle: " + " -> ".join(path[path.index(module):] + [module]))
            if module in done:
                return
            path.append(module)
            for dep in sorted(graph[module]):
                visit(dep)
            path.pop()
            done.add(module)

        for module in sorted(graph):
            visit(module)

    def test_only_imported_lazily_outside_the_package(self):
        for root, dirs, files in os.walk(PACKAGE):
            if os.path.abspath(root).startswith(WEB):
                continue
            for filename in files:
                if not filename.endswith(".py"):
                    continue
                path = os.path.join(root, filename)
                relative = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3]
                module = relative.replace(os.sep, ".").removesuffix(".__init__")
                for name, line, at_top in imports(path, module):
                    if name == "senselink.web" or name.startswith("senselink.web."):
                        self.assertFalse(at_top, f"{path}:{line} imports {name} at module level")

    def test_a_daemon_without_web_loads_no_web_stack(self):
        script = (
            "import sys\n"
            "from senselink import config\n"
            "from senselink.service import makeService\n"
            "cfg = config.load_text('sources:\\n- static:\\n    plugs:\\n    - a: {max_watts: 1}\\n',"
            " 'x.yml')\n"
            "makeService(cfg, port=0, interface='127.0.0.1')\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m == 'senselink.web' or m.startswith(('senselink.web.', 'prometheus'))))\n")
        env = dict(os.environ, PYTHONPATH=os.path.dirname(PACKAGE))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=env, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.strip(), "[]")
