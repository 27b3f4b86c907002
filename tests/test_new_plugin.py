"""`cdp new-plugin`: the scaffold installs with pip, passes its own tests and is found by its entry point.

The core is first built with setuptools' ``build_py`` (what a wheel of cdp-core
holds, package data included) and the command runs from that build, so a
template missing from the package data fails here, not on a user's machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools
from typer.testing import CliRunner

from cdp_core.cli.app import app

REPO = Path(__file__).resolve().parent.parent

# setuptools builds wheels with the `wheel` package before 70.1; a venv without it
# cannot build the plugin offline. Then the plugin's [build-system] is pointed at
# this stdlib backend, which builds the same wheel from the same [project] table.
FALLBACK_BACKEND = '''
"""A stdlib PEP 517 backend: a pure-Python wheel from [project] and the packages found by
[tool.setuptools.packages.find] include patterns (enough for a generated cdp plugin)."""
import base64, fnmatch, hashlib, pathlib, re, tomllib, zipfile


def _record(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())
    project = data["project"]
    name, version = project["name"], project["version"]
    stem = re.sub(r"[-_.]+", "_", name).lower()
    info = f"{stem}-{version}.dist-info"
    include = data["tool"]["setuptools"]["packages"]["find"]["include"]
    files = {}
    for init in sorted(pathlib.Path(".").glob("**/__init__.py")):
        package = ".".join(init.parent.parts)
        if any(fnmatch.fnmatch(package, pattern) for pattern in include):
            for source in sorted(init.parent.glob("*.py")):
                files[source.as_posix()] = source.read_bytes()
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {req}" for req in project.get("dependencies", [])]
    for extra, reqs in project.get("optional-dependencies", {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f"Requires-Dist: {req}; extra == \\"{extra}\\"" for req in reqs]
    files[f"{info}/METADATA"] = ("\\n".join(meta) + "\\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: fallback\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    groups = project.get("entry-points", {})
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\\n" + "".join(f"{k} = {v}\\n" for k, v in entries.items()) + "\\n" for group, entries in groups.items()
    ).encode()
    record = [_record(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    wheel = f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / wheel, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        archive.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
    return wheel
'''


def setuptools_builds_wheels_offline() -> bool:
    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CDP_DISABLE_PLUGINS", "CDP_CONFIG")}
    return {**env, **extra}


def run(
    *args: str, cwd: Path, pythonpath: list[Path] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    env = clean_env(**({"PYTHONPATH": os.pathsep.join(map(str, pythonpath))} if pythonpath else {}))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def show(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"


@pytest.fixture(scope="module")
def built_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdp_core as setuptools builds it for a wheel (``build_py``): code and package data only."""
    root = tmp_path_factory.mktemp("core")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "cdp_core", root / "cdp_core", ignore=shutil.ignore_patterns("__pycache__"))
    done = run("-c", "import setuptools; setuptools.setup()", "-q", "build_py", "-d", str(root / "lib"), cwd=root)
    assert done.returncode == 0, show(done)
    return root / "lib"


@pytest.fixture(scope="module")
def acme(built_core: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cdp new-plugin acme --dir plugins``, run from the built core."""
    work = tmp_path_factory.mktemp("scaffold")
    done = run("-m", "cdp_core.cli", "new-plugin", "acme", "--dir", "plugins", cwd=work, pythonpath=[built_core])
    assert done.returncode == 0, show(done)
    assert "created" in done.stdout and "cdp-acme" in done.stdout
    return work / "plugins" / "cdp-acme"


def test_templates_ship_with_the_package(built_core: Path) -> None:
    templates = built_core / "cdp_core" / "templates" / "plugin"
    shipped = sorted(p.relative_to(templates).as_posix() for p in templates.rglob("*") if p.is_file())
    assert shipped == [
        "README.md.tmpl",
        "package/__init__.py.tmpl",
        "pyproject.toml.tmpl",
        "tests/conftest.py.tmpl",
        "tests/test_{{type_name}}_source.py.tmpl",
    ]


def test_scaffold_layout(acme: Path) -> None:
    files = sorted(p.relative_to(acme).as_posix() for p in acme.rglob("*") if p.is_file())
    assert files == ["README.md", "cdp_acme/__init__.py", "pyproject.toml", "tests/conftest.py", "tests/test_acme_source.py"]
    pyproject = tomllib.loads((acme / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["name"] == "cdp-acme" and "cdp-core" in project["dependencies"]
    assert project["entry-points"]["cdp"] == {"acme": "cdp_acme"}
    assert project["optional-dependencies"]["dev"][:2] == ["pytest>=8", "respx>=0.21"]
    code = (acme / "cdp_acme" / "__init__.py").read_text()
    assert "client_for(" in code and "api_token: SecretStr" in code and "def cdp_register_sources" in code
    for path in acme.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), f"unfilled placeholder in {path}"
    assert 'pytest_plugins = ["cdp_core.testing"]' in (acme / "tests" / "conftest.py").read_text()


def test_generated_plugin_installs_and_passes_its_tests(acme: Path, tmp_path: Path) -> None:
    source = tmp_path / "src" / "cdp-acme"
    shutil.copytree(acme, source)
    if not setuptools_builds_wheels_offline():
        (source / "fallback_backend.py").write_text(FALLBACK_BACKEND)
        text = (source / "pyproject.toml").read_text()
        text = text.replace('requires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"',
                            'requires = []\nbuild-backend = "fallback_backend"\nbackend-path = ["."]')  # fmt: skip
        assert "fallback_backend" in text
        (source / "pyproject.toml").write_text(text)
    site = tmp_path / "site"
    done = run(
        "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
        "--target", str(site), str(source), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, show(done)
    assert (site / "cdp_acme" / "__init__.py").is_file()

    # The generated tests, run against the installed copy (not the source folder).
    suite = tmp_path / "run"
    shutil.copytree(acme / "tests", suite / "tests")
    shutil.copy(acme / "pyproject.toml", suite / "pyproject.toml")
    done = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=suite, pythonpath=[site])
    assert done.returncode == 0, show(done)
    assert "18 passed" in done.stdout, show(done)
    where = run("-c", "import cdp_acme; print(cdp_acme.__file__)", cwd=suite, pythonpath=[site])
    assert where.stdout.strip().startswith(str(site)), show(where)

    # Discovery: the entry point, as `cdp plugins` sees it.
    done = run("-m", "cdp_core.cli", "plugins", "--json", cwd=tmp_path, pythonpath=[site])
    assert done.returncode == 0, show(done)
    plugins = {info["name"]: info for info in json.loads(done.stdout)}
    assert plugins["acme"]["status"] == "ok", plugins["acme"]
    assert plugins["acme"]["distribution"] == "cdp-acme" and plugins["acme"]["version"] == "0.1.0"
    assert plugins["acme"]["registered"] == {"sources": ["acme"]}
    probe = (
        "from cdp_core.plugins import load_plugins; print(load_plugins().registry.get('source', 'acme').cls.__module__)"
    )
    done = run("-c", probe, cwd=tmp_path, pythonpath=[site])
    assert done.stdout.strip() == "cdp_acme", show(done)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme", "invalid plugin name"),
        ("acme_shop", "invalid plugin name"),
        ("acme-", "invalid plugin name"),
        ("acme--shop", "invalid plugin name"),
        ("9acme", "invalid plugin name"),
        ("cdp-acme", "short name"),
        ("csv", "already registered by cdp.files"),
    ],
)
def test_invalid_names_exit_2(tmp_path: Path, name: str, message: str) -> None:
    result = CliRunner().invoke(app, ["new-plugin", name, "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_exits_2(tmp_path: Path) -> None:
    (tmp_path / "cdp-acme").mkdir()
    (tmp_path / "cdp-acme" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(app, ["new-plugin", "acme", "--dir", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "already exists" in result.stderr
    assert [p.name for p in (tmp_path / "cdp-acme").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdp-acme"]  # no staging folder left behind


def test_hyphenated_name(tmp_path: Path) -> None:
    from cdp_core.cli.new_plugin import names_for, scaffold

    assert names_for("meta-leads") == {
        "name": "meta-leads", "dist": "cdp-meta-leads", "module": "cdp_meta_leads", "type_name": "meta_leads",
        "Class": "MetaLeads", "Title": "Meta Leads", "ENV": "META_LEADS",
    }  # fmt: skip
    folder, _ = scaffold("acme-shop", tmp_path)
    assert folder == tmp_path / "cdp-acme-shop"
    pyproject = tomllib.loads((folder / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["cdp"] == {"acme-shop": "cdp_acme_shop"}
    code = (folder / "cdp_acme_shop" / "__init__.py").read_text()
    assert 'TYPE_NAME = "acme_shop"' in code and "class AcmeShopSource(Source)" in code
    assert "${ACME_SHOP_API_TOKEN}" in code
    compile(code, "cdp_acme_shop/__init__.py", "exec")
    test_file = folder / "tests" / "test_acme_shop_source.py"  # named after the plugin: no clash across plugins
    compile(test_file.read_text(), test_file.name, "exec")


def test_declarative_connector_passes_its_test_as_generated(tmp_path: Path) -> None:
    """``cdp new-plugin --declarative shop``: a connectors.toml and a test that passes as written."""
    result = CliRunner().invoke(app, ["new-plugin", "--declarative", "shop", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "shop"
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert files == ["README.md", "connectors.toml", "tests/conftest.py", "tests/test_shop_connector.py"]
    toml = tomllib.loads((folder / "connectors.toml").read_text())
    assert toml["connectors"]["shop"]["type"] == "rest"
    assert toml["connectors"]["shop"]["auth"]["token"] == "${SHOP_API_TOKEN}"
    assert not [p for p in folder.rglob("*.py") if p.name != "conftest.py" and "{{" in p.read_text()]
    done = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=folder)
    assert done.returncode == 0, show(done)
    assert "12 passed" in done.stdout and "skipped" not in done.stdout, show(done)
