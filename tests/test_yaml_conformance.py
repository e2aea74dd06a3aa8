"""scripts/yaml_conformance.py sorts yaml-test-suite cases (here a tiny fake suite in the
data branch's layout) into pass, deliberate refusal, false reject, false accept, wrong value."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SPEC = importlib.util.spec_from_file_location("yaml_conformance",
                                               ROOT / "scripts" / "yaml_conformance.py")
conformance = importlib.util.module_from_spec(_SPEC)
sys.modules["yaml_conformance"] = conformance  # dataclasses look their module up
_SPEC.loader.exec_module(conformance)


def _case(folder: Path, yaml_text: str, json_text: str | None = None,
          error: bool = False) -> None:
    folder.mkdir(parents=True)
    (folder / "===").write_text("a case\n")
    (folder / "in.yaml").write_text(yaml_text)
    if json_text is not None:
        (folder / "in.json").write_text(json_text)
    if error:
        (folder / "error").write_text("")


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    _case(tmp_path / "PASS", "a: 1\nb: [x, 1.5e3, true]\n", '{"a": 1, "b": ["x", 1500, true]}\n')
    _case(tmp_path / "BADY", "a: [1, 2\n", error=True)           # refused: a pass
    _case(tmp_path / "ACCP", "a: 1\n", error=True)               # loads: a false accept
    _case(tmp_path / "WRNG", "a: yes\n", '{"a": true}\n')         # 1.1 bool: a wrong value
    _case(tmp_path / "TAGS", "a: !!str 1\n", '{"a": "1"}\n')      # a deliberate refusal
    _case(tmp_path / "DOCS", "a: 1\n---\nb: 2\n", '{"a": 1}\n{"b": 2}\n')
    _case(tmp_path / "REJT", "a: 'x\n", '{"a": "x"}\n')           # stands in for a parser bug
    _case(tmp_path / "NJSN", "? [a]\n: b\n")                      # no in.json: JSON can't write it
    _case(tmp_path / "NJOK", "a: 1\n")                            # loads; nothing to compare
    _case(tmp_path / "SUBS" / "00", "- 1\n", "[1]\n")
    _case(tmp_path / "SUBS" / "01", "- 1\n", '["1"]\n')
    (tmp_path / "SUBS" / "name").write_text("not a case folder\n")
    return tmp_path


def test_each_case_gets_its_outcome_and_code(suite):
    got = {o.case: (o.outcome, o.code) for o in conformance.run_suite(suite)}
    assert got == {
        "ACCP": ("false accept", None),
        "BADY": ("pass", "yaml-syntax"),
        "DOCS": ("deliberate refusal", "multiple-documents"),
        "NJOK": ("pass", None),
        "NJSN": ("deliberate refusal", "bad-key"),
        "PASS": ("pass", None),
        "REJT": ("false reject", "yaml-syntax"),
        "SUBS/00": ("pass", None),
        "SUBS/01": ("wrong value", None),
        "TAGS": ("deliberate refusal", "forbidden-tag"),
        "WRNG": ("wrong value", None),
    }


def test_the_report_counts_each_outcome_and_says_why_a_refusal_is_deliberate(suite, capsys):
    assert conformance.main(["--suite", str(suite)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("11 cases\npass: 4 (1 valid cases without in.json: loaded, value "
                          "unchecked)\ndeliberate refusal: 3\n")
    assert "false reject: 1\n  yaml-syntax: 1: REJT\n" in out
    assert "false accept: 1\n" in out and "wrong value: 2\n  -: 2: SUBS/01 WRNG\n" in out
    assert f"forbidden-tag: 1 ({conformance.DELIBERATE['forbidden-tag']}): TAGS" in out


def test_json_output_has_one_object_per_case(suite, capsys):
    conformance.main(["--suite", str(suite), "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 11 and {"case", "outcome", "code", "detail"} == set(rows[0])


def test_a_folder_without_cases_is_refused_with_the_clone_command(tmp_path, capsys):
    with pytest.raises(SystemExit):
        conformance.main(["--suite", str(tmp_path)])
    assert "git clone -b data https://github.com/yaml/yaml-test-suite" in capsys.readouterr().err


def test_multiple_json_documents_are_read_one_after_another():
    assert conformance.json_documents('{"a": 1}\n[2]\n"x"\n') == [{"a": 1}, [2], "x"]
    assert conformance.json_documents("") == []
