"""The import layering of DESIGN.md §10 / STYLE.md §3, checked with ``ast``.

Every module under ``src/ember`` is parsed; every import counts, including
imports inside functions and under ``if TYPE_CHECKING:``.  A failure lists
each offending import as ``module:line imports target (rule)``.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import ember

PACKAGE_DIR = Path(ember.__file__).resolve().parent
SRC_DIR = PACKAGE_DIR.parent

#: Highest first.  A layer imports only layers below it; the packages of one
#: layer are independent of each other.
LAYERS: list[tuple[str, ...]] = [
    ("cli",),
    ("autoscaler", "dashboard", "serve"),
    ("train",),
    ("tune",),
    ("air", "data"),
    ("util", "job_submission"),
    ("experimental",),
    ("api", "worker"),
    ("runtime", "control", "node", "dag"),
    ("scheduler", "object_store", "runtime_env", "metrics"),
    ("protocol",),
    ("rpc",),
    ("exceptions",),
    ("common",),
]

#: Modules outside every layer: the root package, the Ray-path shims, and the
#: shipped sample programs (which use the public API like any user program).
OUTSIDE = {
    "ember",
    "ember.actor",
    "ember.remote_function",
    "ember.runtime_context",
    "ember.demo",
    "ember.cluster_utils",
    "ember.autoscaling_cluster",
}
OUTSIDE_PACKAGES = ("ember.examples",)

#: Importable by anyone.
FREE = {"ember._version"}

#: Clients reach servers only through ``protocol`` stubs.
CLIENTS = ("api", "util", "worker", "runtime", "job_submission")
SERVERS = ("control", "node")

#: Tools talk to the cluster over RPC (STYLE.md §3); they start daemons with
#: ``sys.executable -m ember.node`` instead of importing them.
TOOLS = ("cli", "dashboard")
NOT_FOR_TOOLS = (
    "api",
    "runtime",
    "worker",
    "control",
    "node",
    "scheduler",
    "object_store",
)

#: The sans-IO cores.
PURE = (
    "ember.scheduler",
    "ember.object_store.store",
    "ember.object_store.spill_policy",
    "ember.object_store.spill_index",
    "ember.runtime.memory_store",
    "ember.runtime.lineage",
    "ember.common.clock",
    "ember.runtime.log_dedup",
    "ember.common.log_names",
    "ember.autoscaler.config",
    "ember.autoscaler.binpack",
    "ember.autoscaler.policy",
    "ember.runtime_env.cache",
)
IO_MODULES = ("asyncio", "socket", "subprocess")

LAYER_OF = {pkg: i for i, layer in enumerate(LAYERS) for pkg in layer}


@dataclasses.dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    source: str
    target: str
    line: int

    def where(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (SRC_DIR / rel).with_suffix(".py").exists() or (
        SRC_DIR / rel / "__init__.py"
    ).exists()


def imports_of(path: Path) -> list[Import]:
    source = module_name(path)
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(Import(source, a.name, node.lineno) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = source.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for a in node.names:
                # ``from ember import exceptions`` imports the submodule.
                sub = f"{module}.{a.name}"
                target = sub if is_module(sub) else module
                out.append(Import(source, target, node.lineno))
    return out


def all_modules() -> dict[str, list[Import]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE_DIR.rglob("*.py"))}


MODULES = all_modules()


def subpackage(module: str) -> str | None:
    """``ember.runtime.objects`` -> ``runtime``; None outside the package."""
    if module != "ember" and not module.startswith("ember."):
        return None
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def is_outside(module: str) -> bool:
    return module in OUTSIDE or module.startswith(
        tuple(p + "." for p in OUTSIDE_PACKAGES) + OUTSIDE_PACKAGES
    )


def layer_of(module: str) -> int | None:
    if module in FREE or is_outside(module):
        return None
    pkg = subpackage(module)
    return None if pkg is None else LAYER_OF.get(pkg)


Modules = dict[str, list[Import]]


def shim_layers(
    module: str, modules: Modules, seen: frozenset[str] = frozenset()
) -> set[str]:
    """The layered modules an outside module reaches through its own imports."""
    reached: set[str] = set()
    for imp in modules.get(module, []):
        t = imp.target
        if t in seen or subpackage(t) is None or t in FREE:
            continue
        if is_outside(t):
            reached |= shim_layers(t, modules, seen | {module})
        else:
            reached.add(t)
    return reached


def ember_imports(modules: Modules) -> list[Import]:
    return [
        imp
        for imports in modules.values()
        for imp in imports
        if subpackage(imp.target) is not None
    ]


def targets_of(imp: Import, modules: Modules) -> list[str]:
    """An import of a shim counts as importing what the shim imports, so that
    the root package cannot launder an upward import."""
    if is_outside(imp.target):
        return sorted(shim_layers(imp.target, modules))
    return [imp.target]


def layering_violations(modules: Modules) -> list[str]:
    problems = []
    for imp in ember_imports(modules):
        src_layer = layer_of(imp.source)
        if src_layer is None:
            continue  # outside modules are unconstrained
        src_pkg = subpackage(imp.source)
        for target in targets_of(imp, modules):
            dst_layer = layer_of(target)
            dst_pkg = subpackage(target)
            if dst_layer is None or dst_pkg == src_pkg:
                continue
            via = f" (via {imp.target})" if target != imp.target else ""
            if dst_layer < src_layer:
                problems.append(
                    f"{imp.where()}{via}: layer {src_pkg!r} may not import the "
                    f"higher layer {dst_pkg!r}"
                )
            elif dst_layer == src_layer:
                problems.append(
                    f"{imp.where()}{via}: {src_pkg!r} and {dst_pkg!r} share a layer "
                    "and must not import each other"
                )
    return problems


def test_architecture_every_module_is_classified() -> None:
    unknown = [
        m
        for m in MODULES
        if m not in FREE and not is_outside(m) and layer_of(m) is None
    ]
    assert not unknown, (
        "modules in no layer (add them to LAYERS or OUTSIDE in this test, and to "
        f"DESIGN.md §10): {unknown}"
    )


def test_architecture_parses_the_whole_package() -> None:
    assert len(MODULES) > 50
    assert "ember.runtime.core_worker" in MODULES
    # inner imports are seen: executor imports actor_host inside a function
    targets = {i.target for i in MODULES["ember.worker.executor"]}
    assert "ember.worker.actor_host" in targets


def test_architecture_layers() -> None:
    problems = layering_violations(MODULES)
    assert not problems, "layering violations:\n" + "\n".join(problems)


def test_architecture_clients_never_import_servers() -> None:
    problems = []
    for imp in ember_imports(MODULES):
        if subpackage(imp.source) not in CLIENTS:
            continue
        problems += [
            f"{imp.where()}: clients reach {subpackage(t)!r} only through protocol stubs"
            for t in targets_of(imp, MODULES)
            if subpackage(t) in SERVERS
        ]
    assert not problems, "\n".join(problems)


def test_architecture_tools_talk_over_rpc() -> None:
    problems = []
    for imp in ember_imports(MODULES):
        if subpackage(imp.source) not in TOOLS:
            continue
        problems += [
            f"{imp.where()}: {subpackage(imp.source)!r} may not import "
            f"{subpackage(t)!r}; talk to the cluster over RPC"
            for t in targets_of(imp, MODULES)
            if subpackage(t) in NOT_FOR_TOOLS
        ]
    assert not problems, "\n".join(problems)


def test_architecture_pure_cores_do_no_io() -> None:
    problems = []
    for module, imports in MODULES.items():
        if not (module in PURE or module.startswith(tuple(p + "." for p in PURE))):
            continue
        problems += [
            f"{imp.where()}: the sans-IO core may not use {imp.target.split('.')[0]}"
            for imp in imports
            if imp.target.split(".")[0] in IO_MODULES
        ]
    assert not problems, "\n".join(problems)


def test_architecture_common_and_exceptions_are_leaves() -> None:
    problems = [
        imp.where()
        for imp in ember_imports(MODULES)
        if subpackage(imp.source) == "common"
        and subpackage(imp.target) != "common"
        and imp.target not in FREE
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ("ember.runtime.x", "ember.api.y", "higher layer 'api'"),
        ("ember.api.x", "ember.worker.y", "share a layer"),
        ("ember.rpc.x", "ember", "higher layer"),  # laundered through the root
        ("ember.api.x", "ember.runtime.y", None),
        ("ember.rpc.x", "ember._version", None),
        ("ember.demo", "ember.cli.main", None),
    ],
)
def test_architecture_checker_catches_violations(
    source: str, target: str, expected: str | None
) -> None:
    """The checker itself: fed one synthetic import, does it say the right thing?"""
    modules = {**MODULES, source: [Import(source, target, 1)]}
    problems = [p for p in layering_violations(modules) if p.startswith(source + ":")]
    if expected is None:
        assert problems == []
    else:
        assert problems
        assert expected in problems[0]
