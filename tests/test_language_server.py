"""The shipped JSON Schema in a real editor back end (yaml-language-server over LSP).

Runs only where ``node`` and an installed yaml-language-server are found
(``$YAML_LANGUAGE_SERVER``, or ``npm install --prefix /tmp/yaml-ls yaml-language-server``):
the suite never needs the network.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_language_server.py"


def load_check():
    spec = importlib.util.spec_from_file_location("check_language_server", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = load_check()
SERVER = check.find_server()


def test_the_server_is_looked_up_in_the_environment_first(tmp_path, monkeypatch):
    script = tmp_path / "bin" / "yaml-language-server"
    script.parent.mkdir()
    script.write_text("")
    monkeypatch.setattr(check.shutil, "which", lambda name: "/usr/bin/node")
    found = check.find_server({check.SERVER_ENV: str(tmp_path)})
    assert found == ["/usr/bin/node", str(script.resolve()), "--stdio"]
    assert check.find_server({check.SERVER_ENV: str(tmp_path / "nowhere")}) is None


def test_the_summary_names_every_case_and_cuts_long_lists():
    findings = {"diagnostics": [(8, "Unknown layer")], "labels": [f"n{i}" for i in range(30)],
                "hover": "x" * 500, "empty": []}
    text = check.summary(findings)
    assert "  line 8: Unknown layer" in text
    assert "labels: 30 items: n0, n1" in text and text.count("...") == 2
    assert "empty: nothing" in text


@pytest.mark.skipif(SERVER is None, reason="yaml-language-server not installed: set "
                    f"{check.SERVER_ENV} or `npm install --prefix /tmp/yaml-ls "
                    "yaml-language-server` (and have node on PATH)")
def test_yaml_language_server_reports_completes_and_hovers_as_the_schema_teaches():
    pipelines = tuple(sorted((ROOT / "pipelines").glob("*.yaml")))
    findings = check.ask_server(SERVER, pipelines=pipelines)
    assert check.unmet(findings) == [], check.summary(findings)
    assert set(findings) == {name for name, _, _ in check.CASES} | {"shipped pipelines"}
    assert findings["shipped pipelines"] == []  # the editor marks nothing in them


def test_without_a_server_the_check_says_how_to_install_one(monkeypatch, capsys):
    monkeypatch.setattr(check, "find_server", lambda: None)
    assert check.main([]) == 2
    assert "npm install --prefix /tmp/yaml-ls yaml-language-server" in capsys.readouterr().err
