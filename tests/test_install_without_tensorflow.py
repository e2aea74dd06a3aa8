"""The light install: kerapipe without its dependencies, plus PyYAML and click.

What CI and the pre-commit hook install to run ``kerapipe validate`` (README, "In CI and
editors"): 35 MB instead of TensorFlow's 2.4 GB. The slow tests build kerapipe's wheel from
this checkout, install it into a fresh virtual environment with the hook's own pip
arguments, and run the commands there. They need no network: PyYAML and click come as
wheels made from this environment's installed copies (``--no-index --find-links``).
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from kerapipe.dependencies import kerapipe_requirements, missing_package_error
from kerapipe.errors import EXIT_SPEC, UsageError

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
HOOK = next(hook for hook in HOOKS if hook["id"] == "kerapipe-validate")
# What `kerapipe validate` imports outside the standard library (tests/test_import_boundary.py
# checks that it loads nothing else): the distributions of the light install.
LIGHT = ("pyyaml", "click")
HEAVY = ("tensorflow", "keras", "numpy", "matplotlib", "mlflow", "keras_tuner", "tf2onnx",
         "onnxruntime", "tensorboard", "keras_hub")


def _core_requirements() -> dict[str, str]:
    """Normalised distribution name -> its requirement line in setup.cfg."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = [line.strip() for line in config["options"]["install_requires"].splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    return {re.split(r"[<>=!~ ;\[]", line)[0].lower().replace("_", "-"): line
            for line in requirements}


# --- the hook and the README name the same light install ------------------------------------

def test_pre_commit_hook_installs_kerapipe_without_its_dependencies():
    # pre-commit runs `pip install . <additional_dependencies>` in this repository's root.
    core = _core_requirements()
    assert HOOK["language"] == "python" and HOOK["entry"] == "kerapipe validate"
    assert HOOK["additional_dependencies"][0] == "--no-deps"
    named = [dependency for dependency in HOOK["additional_dependencies"][1:]
             if "platform_system" not in dependency]
    assert named == [core[name] for name in LIGHT], "the hook's bounds are setup.cfg's"
    # click needs colorama on Windows only, and --no-deps would leave it out there
    assert 'colorama; platform_system == "Windows"' in HOOK["additional_dependencies"]


def test_readme_gives_the_hook_and_the_ci_command_of_the_light_install():
    section = (ROOT / "README.md").read_text("utf-8").split("## In CI and editors", 1)[1]
    section = section.split("\n## ", 1)[0]
    core = _core_requirements()
    command = "pip install --no-deps kerapipe " + " ".join(f'"{core[name]}"' for name in LIGHT)
    assert command in section
    assert "id: kerapipe-validate" in section and "--no-deps" in section


# --- the error for a package this install lacks ---------------------------------------------

def _missing(module: str, args: list[str], monkeypatch) -> UsageError | None:
    monkeypatch.setitem(sys.modules, module, None)  # find_spec answers None: not installed
    return missing_package_error(ModuleNotFoundError(f"No module named {module!r}",
                                                     name=module), args)


def test_a_tensorflow_command_without_tensorflow_names_the_full_install(monkeypatch):
    error = _missing("tensorflow", ["run", "pipelines/iris.yaml"], monkeypatch)
    assert isinstance(error, UsageError) and error.exit_code == EXIT_SPEC == 2
    message = error.format_message()
    assert message.startswith("error: `kerapipe run` needs tensorflow, which is not installed")
    assert message.endswith("Install kerapipe's dependencies: pip install kerapipe")
    assert "`kerapipe validate` without --deep and `kerapipe schema`" in message


def test_validate_deep_without_tensorflow_names_the_flag(monkeypatch):
    error = _missing("tensorflow", ["validate", "--deep", "p.yaml"], monkeypatch)
    assert error.format_message().startswith("error: `kerapipe validate --deep` needs tensorflow")


@pytest.mark.parametrize("module, args, expected", [
    ("mlflow", ["run", "p.yaml"],
     '`kerapipe run` needs mlflow (pip package mlflow-skinny), which is not installed here. '
     'Install it with kerapipe\'s mlflow extra: pip install "kerapipe[mlflow]"'),
    ("tf2onnx", ["export", "runs/x", "--format", "onnx"],
     '`kerapipe export` needs tf2onnx, which is not installed here. Install it with '
     'kerapipe\'s onnx extra: pip install "kerapipe[onnx]"'),
    ("keras_tuner", ["tune", "p.yaml"],
     '`kerapipe tune` needs keras_tuner, which is not installed here. Install it with '
     'kerapipe\'s tune extra: pip install "kerapipe[tune]"'),
], ids=["mlflow", "onnx", "tune"])
def test_a_missing_extra_names_the_extra_that_installs_it(module, args, expected,
                                                          monkeypatch):
    assert str(_missing(module, args, monkeypatch)) == expected


def test_the_extras_are_read_from_kerapipes_own_metadata():
    requirements = kerapipe_requirements()
    assert requirements is not None, "kerapipe is installed (pip install -e .)"
    assert "" in requirements["tensorflow"] and "" in requirements["pyyaml"]
    assert requirements["mlflow-skinny"][0] == "mlflow"


@pytest.mark.parametrize("err", [
    ModuleNotFoundError("No module named 'not_a_kerapipe_dependency'",
                        name="not_a_kerapipe_dependency"),
    ModuleNotFoundError("No module named 'yaml.nowhere'", name="yaml.nowhere"),
    ModuleNotFoundError("No module named 'kerapipe.nowhere'", name="kerapipe.nowhere"),
    ModuleNotFoundError("no name"),
    ValueError("tensorflow"),
], ids=["foreign-module", "submodule-of-an-installed-package", "kerapipe-module", "no-name",
        "not-an-import-error"])
def test_other_failures_are_not_a_missing_dependency(err):
    assert missing_package_error(err, ["run", "p.yaml"]) is None


# --- a real light install, from this checkout -----------------------------------------------

def _wheel_of_installed(name: str, folder: Path) -> Path:
    """A wheel of the installed distribution ``name``, made from its files (RECORD
    rewritten with their hashes): PyYAML and click offline, as this environment has them."""
    dist = metadata.distribution(name)
    info = next(Path(str(file)).parts[0] for file in dist.files
                if str(file).endswith(".dist-info/METADATA"))
    tag = next(line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines()
               if line.startswith("Tag:"))
    wheel = folder / f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}-{tag}.whl"
    skipped = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files:
            parts = Path(str(file)).parts
            if parts[0] == ".." or "__pycache__" in parts \
                    or (parts[0] == info and parts[-1] in skipped):
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            archive.writestr(str(file), data)
            records.append(f"{file},sha256={digest.decode()},{len(data)}")
        records.append(f"{info}/RECORD,,")
        archive.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return wheel


def _kerapipe_wheel(folder: Path) -> Path:
    """kerapipe's wheel, built from a copy of this checkout's sources (a build writes
    build/ and *.egg-info into its source folder: not into the shared checkout)."""
    source = folder / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "kerapipe", source / "kerapipe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Offline with the setuptools and wheel this environment has; where it lacks them, pip
    # fetches pyproject.toml's build requirements from the package index.
    offline = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    build = ["--no-build-isolation", "--no-index"] if offline else []
    _check([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *build,
            "--wheel-dir", str(folder / "wheels"), str(source)], timeout=300)
    return next((folder / "wheels").glob("kerapipe-*.whl"))


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP",
                           "KERAPIPE_DEBUG", "PIP_REQUIRE_VIRTUALENV")}


def _check(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=_clean_env(), **kwargs)
    assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
    return done


class LightInstall:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.wheel = _kerapipe_wheel(folder)
        for name in LIGHT:
            _wheel_of_installed(name, folder / "wheels")
        venv = folder / "venv"
        _check([sys.executable, "-m", "venv", str(venv)], timeout=180)
        bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
        self.python = str(bin_dir / "python")
        self.kerapipe = str(bin_dir / "kerapipe")
        # pre-commit's `pip install . <additional_dependencies>`, the wheel for `.`
        _check([self.python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links",
                str(folder / "wheels"), str(self.wheel), *HOOK["additional_dependencies"]],
               timeout=180, cwd=folder)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.kerapipe, *args], cwd=self.folder, capture_output=True,
                              text=True, timeout=60, env=_clean_env())


@pytest.fixture(scope="module")
def light(tmp_path_factory) -> LightInstall:
    return LightInstall(tmp_path_factory.mktemp("light-install"))


@pytest.mark.slow
def test_the_wheel_holds_the_spec_side_its_data_and_the_command(light):
    with zipfile.ZipFile(light.wheel) as wheel:
        names = set(wheel.namelist())
        entry_points = next(wheel.read(name).decode() for name in names
                            if name.endswith(".dist-info/entry_points.txt"))
    assert {"kerapipe/cli.py", "kerapipe/spec/validate.py", "kerapipe/spec/keras_catalog.json",
            "kerapipe/spec/keras_docs.json", "kerapipe/dependencies.py"} <= names
    assert "kerapipe = kerapipe.cli:main" in entry_points


@pytest.mark.slow
def test_the_light_install_has_kerapipe_pyyaml_and_click_and_no_tensorflow(light):
    probe = ("import importlib.util, json, kerapipe\n"
             f"print(json.dumps([kerapipe.__file__, [m for m in {HEAVY!r} "
             "if importlib.util.find_spec(m)]]))")
    location, heavy = json.loads(_check([light.python, "-c", probe], timeout=60,
                                        cwd=light.folder).stdout)
    assert Path(location).resolve().is_relative_to((light.folder / "venv").resolve())
    assert heavy == []
    listed = _check([light.python, "-m", "pip", "list", "--format", "json"], timeout=60).stdout
    installed = {package["name"].lower() for package in json.loads(listed)}
    assert {"kerapipe", *LIGHT} <= installed
    assert not installed & {"tensorflow", "keras", "numpy", "matplotlib"}


@pytest.mark.slow
def test_the_light_install_validates_the_example_pipelines(light):
    done = light.run("validate", str(ROOT / "pipelines"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^\d+ file\(s\) checked: 0 error\(s\)", done.stdout, re.M), done.stdout


@pytest.mark.slow
def test_the_light_install_reports_a_broken_file_at_its_line(light):
    broken = light.folder / "broken.yaml"
    broken.write_text("kerapipe: 1\ndata:\n  source: {sample: mnist}\nmodel:\n  layers:\n"
                      "    - Dense: {units: 10, activaton: relu}\n", encoding="utf-8")
    done = light.run("validate", str(broken))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{broken}:6:26: error[unknown-argument]: model.layers[0].Dense.activaton: unknown "
        "argument 'activaton' of Dense. Did you mean 'activation'?",
        "1 file(s) checked: 1 error(s), 0 warning(s)"]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_the_light_install_prints_the_schema_of_this_checkout(light):
    from kerapipe.cli import schema_document

    done = light.run("schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(json.dumps(schema_document()))


@pytest.mark.slow
@pytest.mark.parametrize("args", [["run", "{pipelines}/iris.yaml"],
                                  ["plan", "{pipelines}/iris.yaml"],
                                  ["validate", "--deep", "{pipelines}/iris.yaml"]],
                         ids=["run", "plan", "validate-deep"])
def test_a_tensorflow_command_in_the_light_install_names_the_full_install(light, args):
    done = light.run(*(arg.format(pipelines=ROOT / "pipelines") for arg in args))
    assert (done.returncode, done.stdout) == (2, ""), done.stdout + done.stderr
    assert done.stderr.startswith(f"error: `kerapipe {args[0]}"), done.stderr
    assert "needs tensorflow, which is not installed here" in done.stderr
    assert done.stderr.rstrip().endswith("pip install kerapipe"), done.stderr
