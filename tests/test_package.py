"""cua as an installed package: a wheel built from this repository, installed in a fresh venv and
used from an empty folder, runs ``cua demo`` offline and serves the pytest plugin's demo app; and
the recordings it ships hold nothing of the machine that made them."""

from __future__ import annotations

import ast
import email
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from cli_helpers import CUA, clean_env
from demo_checks import assert_demo_output, offline

from cua.bundled import demo_app_folder, scenarios_folder

REPO = Path(__file__).resolve().parent.parent

# What only one machine or one run has: loopback ports, absolute paths of this machine or of any
# POSIX or Windows one, temp folders, and run folder names (<UTC stamp>-<slug>).
MACHINE_SPECIFIC = re.compile(
    r"(127\.0\.0\.1|localhost|\[::1\]):\d+"
    r"|\"(/|[A-Za-z]:\\\\)(tmp|work|home|root|Users|var|private|opt)\b"
    r"|pytest-of-|/tmp/|\\\\Temp\\\\"
    r"|\d{8}-\d{6}-[a-z0-9-]+",
)


def machine_specific(folder: Path, *local: str) -> list[str]:
    """Every machine-specific value in the text files of a recording, as ``file: match``."""
    found = []
    for file in sorted(folder.rglob("*")):
        if file.suffix not in {".json", ".jsonl"}:
            continue
        text = file.read_text(encoding="utf-8")
        found += [f"{file.relative_to(folder)}: {m.group(0)}" for m in MACHINE_SPECIFIC.finditer(text)]
        found += [f"{file.relative_to(folder)}: {value}" for value in local if value in text]
    return found


# --- recordings ---------------------------------------------------------------------------------


def test_bundled_recordings_hold_nothing_of_the_machine_that_made_them() -> None:
    recordings = sorted((scenarios_folder() / "recordings").iterdir())
    assert len(recordings) == len(list(scenarios_folder().glob("*.cua.yaml")))
    for recording in recordings:
        assert machine_specific(recording, str(REPO)) == [], recording.name
        assert not (recording / "report.html").exists()
        meta = json.loads((recording / "run.json").read_text(encoding="utf-8"))
        assert meta["settings"]["start_url"].startswith("{{served_url}}/")
        assert (recording / meta["scenario"]["path"]).resolve() == scenarios_folder() / f"{recording.name}.cua.yaml"


def test_a_new_recording_is_portable_it_replays_after_its_project_moved(tmp_path: Path) -> None:
    """``--record`` writes the served URL as {{served_url}} and paths relative to the recording: the
    project folder moved elsewhere still replays, serving the app on a port of its own."""
    project = tmp_path / "project"
    shutil.copytree(demo_app_folder(), project / "demo_app", ignore=shutil.ignore_patterns("__pycache__"))
    (project / "scenarios").mkdir()
    shutil.copy(scenarios_folder() / "login.cua.yaml", project / "scenarios")
    scenario = project / "scenarios" / "login.cua.yaml"

    run = subprocess.run([str(CUA), "run", str(scenario), "--model", "scripted", "--record",
                          "--out", str(tmp_path / "runs")], capture_output=True, text=True, env=clean_env(),
                         timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    recording = project / "scenarios" / "recordings" / "login"
    assert "recording saved to" in run.stderr
    assert machine_specific(recording, str(tmp_path)) == []
    assert not (recording / "report.html").exists()

    moved = project.rename(tmp_path / "elsewhere")
    # By the scenario file, and by the recording folder alone (which finds its scenario file).
    for target in (moved / "scenarios" / "login.cua.yaml", moved / "scenarios" / "recordings" / "login"):
        replay = subprocess.run([str(CUA), "replay", str(target), "--json", "--out", str(tmp_path / "replays")],
                                capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=120)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        result = json.loads(replay.stdout)
        assert result["status"] == "completed" and all(c["ok"] for c in result["checks"]) and result["checks"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/dashboard\.html", result["final_url"])


# --- layers ---------------------------------------------------------------------------------------


def cua_imports() -> dict[str, set[str]]:
    """Every module of cua/ and the cua modules it imports anywhere in its text (late imports and
    type-checking ones too), as dotted names; ``from . import x`` counts as the package and x."""
    graph: dict[str, set[str]] = {}
    for file in (REPO / "cua").rglob("*.py"):
        parts = list(file.relative_to(REPO).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        package = module.split(".") if is_package else module.split(".")[:-1]
        found: set[str] = set()
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
        graph[module] = {name for name in found if name == "cua" or name.startswith("cua.")}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """The cua modules ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for name in graph.get(todo.pop(), ()):
            if name not in seen and name in graph:
                seen.add(name)
                todo.append(name)
    return seen


def under(name: str, *packages: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


# What drives a run: the loop, the wire formats, the runner and the lifecycle, replay, the CLI.
RUNNING = ("cua.agent", "cua.providers", "cua.runner", "cua.lifecycle", "cua.replay", "cua.cli")


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("cua.runs", (*RUNNING, "cua.report")),  # the run folder: below the loop, replay and reports
    ("cua.report", RUNNING),  # reports: readers of run folders only
    ("cua.replay", ("cua.runner", "cua.cli")),  # beside the runner, sharing cua.lifecycle
    ("cua.lifecycle", ("cua.runner", "cua.replay", "cua.cli")),
    ("cua.record", ("cua.agent", "cua.runner", "cua.lifecycle", "cua.replay", "cua.cli", "cua.mcp")),  # beside the loop
    ("cua.mcp", ("cua.cli",)),  # a front end beside the CLI: library calls, never the CLI's printing
    ("cua.integrations", ("cua.cli",)),
])
def test_data_flows_one_way_between_the_layers(layer: str, forbidden: tuple[str, ...]) -> None:
    graph = cua_imports()
    modules = [m for m in graph if under(m, layer)]
    assert modules, f"no module under {layer}"
    broken = {m: sorted(n for n in reachable(graph, m) if under(n, *forbidden)) for m in modules}
    assert {m: names for m, names in broken.items() if names} == {}


def test_no_module_imports_a_private_name_of_another() -> None:
    private = []
    for file in (REPO / "cua").rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                private += [f"{file.relative_to(REPO)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert private == []


# --- the wheel ----------------------------------------------------------------------------------

DEMO_URL_TEST = '''
import urllib.request


def test_the_demo_app_is_served(cua_demo_url):
    with urllib.request.urlopen(cua_demo_url + "/login.html") as response:
        page = response.read().decode()
    assert "<title>Sign in" in page, page[:300]
'''


def not_in_a_build(folder: str, names: list[str]) -> set[str]:
    """What a copy of the checkout leaves out: git, venvs and caches anywhere, and the run output
    and build folders at the top (not cua/runs/, the package)."""
    top = Path(folder) == REPO
    return {n for n in names if n in {".git", "__pycache__", ".pytest_cache"} or n.startswith(".venv")
            or n.endswith(".egg-info") or (top and n in {"runs", "build"})}


def build_wheel(dist: Path, tmp_path: Path) -> Path:
    """A wheel built offline from a copy of the repository (a build in place would leave build/
    in the checkout, whose stale files later builds pick up)."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=not_in_a_build)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--no-index", "-q", "-w", str(dist), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = dist.glob("cua-*.whl")
    return wheel


def fresh_venv(root: Path, tmp_path: Path) -> Path:
    """A new venv that sees the packages of the venv running this test (cua's dependencies, pytest)
    but not its editable cua: they come through a folder of links to everything but cua."""
    # No pip of its own (ensurepip takes long): the test's pip installs into it with --python.
    proc = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deps = tmp_path / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.startswith(("cua-", "cua.", "__editable__", "__pycache__")) and entry.suffix != ".pth":
            (deps / entry.name).symlink_to(entry)
    site = subprocess.run([str(root / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "dev-packages.pth").write_text(f"{deps}\n", encoding="utf-8")
    return root


def test_a_wheel_runs_the_demo_and_serves_the_demo_app_from_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist", tmp_path)

    # Everything of the demo ships: each package of cua/, every file of scenarios/ and demo_app/.
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(REPO).as_posix() for p in (REPO / "cua").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names
    resources = {f.relative_to(REPO).as_posix() for f in (REPO / "cua").rglob("*")
                 if f.suffix in {".css", ".js", ".html", ".typed"}}
    assert resources and resources - names == set()  # the report's styles and scripts among them
    for folder, package in ((REPO / "scenarios", "cua/scenarios"), (REPO / "demo_app", "cua/demo_app")):
        shipped = {f"{package}/{f.relative_to(folder).as_posix()}" for f in folder.rglob("*")
                   if f.is_file() and "__pycache__" not in f.parts}
        assert shipped - names == set()

    # pip installs the dependencies pyproject.toml declares, no more and no fewer.
    metadata = email.message_from_string(
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    required = {r.replace(" ", "") for r in metadata.get_all("Requires-Dist") if "extra ==" not in r}
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    assert required == {d.replace(" ", "") for d in declared}

    venv = fresh_venv(tmp_path / "venv", tmp_path)
    python, cua = venv / "bin" / "python", venv / "bin" / "cua"
    # With no --no-deps and no index: every declared dependency must already be there, offline.
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "-q",
                           str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in clean_env().items() if k not in {"PYTHONPATH", "CUA_DEMO_PASSWORD"}}
    where = subprocess.run([str(python), "-c", "import cua, cua.bundled as b; print(cua.__file__); "
                            "print(b.scenarios_folder()); print(b.demo_app_folder())"],
                           capture_output=True, text=True, cwd=empty, env=env, check=True).stdout.split()
    package = Path(where[0]).parent
    assert package.is_relative_to(venv), where  # the wheel's cua, not the checkout's
    assert [Path(p) for p in where[1:]] == [package / "scenarios", package / "demo_app"]

    demo = subprocess.run(offline([str(cua), "demo"]), capture_output=True, text=True, cwd=empty, env=env,
                          timeout=300)
    assert_demo_output(demo, empty / "runs" / "demo", empty)

    (empty / "test_demo_url.py").write_text(DEMO_URL_TEST, encoding="utf-8")
    tests = subprocess.run(offline([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_demo_url.py"]),
                           capture_output=True, text=True, cwd=empty, env=env, timeout=120)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout
