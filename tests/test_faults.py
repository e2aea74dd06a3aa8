"""Bad data, training faults, output faults and hostile input: one table, one set of promises.

Every case runs ``kerapipe run`` (through ``kerapipe.cli.main``, in this process, with the
real exit-code mapping) in a workspace that already holds a finished run, and asserts:

* the documented exit code, and a message that names what is wrong;
* no Python traceback in the output;
* the earlier run folder is byte-identical afterwards (nothing a user had is lost);
* nothing is written outside the new run folders (the case's own files are unchanged);
* the canary file does not exist: no code from the pipeline ran.

Faults that cannot be produced on demand on a 2-core CI machine (out of memory, a full
disk) are injected by patching the one call that would fail.
"""

from __future__ import annotations

import collections
import errno
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import pytest

CANARY = "canary.txt"  # hostile cases try to create this file next to the pipeline

NPZ = textwrap.dedent("""\
    kerapipe: 1
    name: case
    seed: 1
    data:
      source: {npz: data.npz}
      split: {validation: 0.2, test: 0.2}
      batch_size: 8
    model:
      layers: [{Dense: {units: 3}}]
    train: {epochs: 1}
    """)
CSV = NPZ.replace("{npz: data.npz}", "{csv: {path: data.csv, label: label}}")
IMAGES = NPZ.replace("{npz: data.npz}", "{images: {dir: pics, image_size: [8, 8]}}").replace(
    "[{Dense: {units: 3}}]", "[Flatten, {Dense: {units: 2}}]")
GOOD_CSV = "a,b,label\n" + "".join(f"{i % 7}.5,{i % 3},{'xyz'[i % 3]}\n" for i in range(30))


def npz_bytes(x: np.ndarray, y: np.ndarray) -> bytes:
    import io

    out = io.BytesIO()
    np.savez(out, x=x, y=y)
    return out.getvalue()


def good_x(n: int = 30) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 4)).astype("float32")


def good_y(n: int = 30) -> np.ndarray:
    return np.arange(n) % 3


def png(value: int) -> bytes:
    import tensorflow as tf

    return tf.io.encode_png(tf.fill((8, 8, 3), tf.constant(value, tf.uint8))).numpy()


def image_folder(extra: Optional[dict] = None) -> dict:
    files = {f"pics/{label}/{i}.png": png(40 * i + (100 if label == "b" else 0))
             for label in ("a", "b") for i in range(6)}
    files.update(extra or {})
    return files


def corrupt_inside(data: bytes) -> bytes:
    """A PNG with its signature and IEND intact but its image data damaged."""
    start = data.index(b"IDAT") + 8
    return data[:start] + bytes(b ^ 0xFF for b in data[start:start + 8]) + data[start + 8:]


def with_keys(text: str, **replacements: str) -> str:
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@dataclass
class Case:
    id: str
    pipeline: str
    exit_code: int
    says: tuple[str, ...]  # substrings of the message (case-sensitive)
    files: dict[str, Union[str, bytes]] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    patch: Optional[Callable] = None  # (monkeypatch) -> None: inject a fault


def _enospc_on_second_checkpoint(monkeypatch):
    import kerapipe.run_folder as run_folder

    real, calls = run_folder._fsync, []

    def fsync(path):
        calls.append(path)
        if any(".tmp-epoch-0002" in str(p) for p in calls):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path)

    monkeypatch.setattr(run_folder, "_fsync", fsync)


def _no_free_space(monkeypatch):
    import collections

    import kerapipe.run_folder as run_folder

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(run_folder.shutil, "disk_usage", lambda path: usage(1 << 30, 1 << 30, 4096))


def _out_of_memory_in_fit(monkeypatch):
    import tensorflow as tf

    from kerapipe.pipeline import CompiledPipeline

    def fit(self, *args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, "OOM when allocating tensor with shape[8,4096,4096] and type float")

    monkeypatch.setattr(CompiledPipeline, "fit", fit)


EVIL_PY = f"from pathlib import Path\nPath(__file__).with_name('{CANARY}').write_text('ran')\n"
TWO_EPOCHS = {"train: {epochs: 1}": "train: {epochs: 3}"}

CASES = [
    # --- data errors: exit 3, naming the file, row/item, column and a fix ---------------
    Case("npz-missing", NPZ, 3, ("data.npz", "no such file")),
    Case("csv-missing", CSV, 3, ("data.csv",)),
    Case("npz-not-an-npz", NPZ, 3, ("data.npz",), {"data.npz": b"this is not a zip file"}),
    Case("npz-x-y-lengths-differ", NPZ, 3, ("data.npz", "30", "29"),
         {"data.npz": npz_bytes(good_x(), good_y(29))}),
    Case("npz-nan-feature", NPZ, 3, ("data.npz", "x[4]", "nan"),
         {"data.npz": npz_bytes(np.where(np.arange(30)[:, None] == 4, np.nan, good_x()),
                                good_y())}),
    Case("npz-inf-feature", NPZ, 3, ("data.npz", "inf"),
         {"data.npz": npz_bytes(np.where(np.arange(30)[:, None] == 9, np.inf, good_x()),
                                good_y())}),
    Case("npz-float-labels", NPZ, 3, ("data.npz", "float labels"),
         {"data.npz": npz_bytes(good_x(), good_y() + 0.5)}),
    Case("labels-beyond-output-units", NPZ, 3, ("labels go up to 5", "units"),
         {"data.npz": npz_bytes(good_x(), np.arange(30) % 6)}),
    Case("csv-ragged-row", CSV, 3, ("data.csv", "line 5"),
         {"data.csv": GOOD_CSV.replace("3.5,0,x\n", "3.5,0,x,9\n", 1)}),
    Case("csv-unparsable-number", CSV, 3, ("data.csv", "line 3", "'a'"),
         {"data.csv": GOOD_CSV.replace("1.5,1,y\n", "one,1,y\n", 1)}),
    Case("csv-label-column-missing", with_keys(CSV, **{"label: label": "label: target"}), 3,
         ("data.csv", "target"), {"data.csv": GOOD_CSV}),
    Case("csv-lone-carriage-returns", CSV, 3, ("data.csv", "lone carriage return"),
         {"data.csv": GOOD_CSV.replace("\n", "\r")}),
    Case("csv-number-python-reads-but-tensorflow-does-not", CSV, 3,
         ("data.csv", "line 4", "'1_0'"), {"data.csv": GOOD_CSV.replace("2.5,2,z\n", "1_0,2,z\n", 1)}),
    Case("csv-nan-feature", CSV, 3, ("data.csv", "line 4"),
         {"data.csv": GOOD_CSV.replace("2.5,2,z\n", "nan,2,z\n", 1)}),
    Case("csv-header-only", CSV, 3, ("data.csv",), {"data.csv": "a,b,label\n"}),
    Case("empty-split", NPZ, 3, ("data.npz",),
         {"data.npz": npz_bytes(good_x(2), good_y(2))}),
    Case("images-folder-missing", IMAGES, 3, ("pics", "no such folder")),
    Case("images-no-class-folders", IMAGES, 3, ("pics", "sub-folder"),
         {"pics/loose.png": png(1)}),
    Case("images-no-images", IMAGES, 3, ("pics", "no images"), {"pics/a/notes.txt": "x"}),
    Case("image-empty-file", IMAGES, 3, ("b/9.png", "empty"),
         image_folder({"pics/b/9.png": b""})),
    Case("image-truncated-png", IMAGES, 3, ("a/0.png", "truncated PNG"),
         image_folder({"pics/a/0.png": png(7)[:-20]})),
    Case("image-text-named-jpg", IMAGES, 3, ("a/x.jpg", "not a PNG, JPEG"),
         image_folder({"pics/a/x.jpg": "hello, not an image"})),
    Case("image-damaged-inside", IMAGES, 3, ("b/3.png", "cannot be decoded"),
         image_folder({"pics/b/3.png": corrupt_inside(png(33))})),
    # --- training faults: exit 4 ---------------------------------------------------------
    Case("nan-loss", with_keys(NPZ, **{"train: {epochs: 1}": "optimizer: {name: sgd, "
                                       "learning_rate: 1.0e+38}\ntrain: {epochs: 2}"}), 4,
         ("loss became", "epoch 1", "learning_rate"),
         {"data.npz": npz_bytes(good_x() * 1e4, good_y())}),
    Case("out-of-memory", NPZ, 4, ("out of memory", "data.batch_size 8",
                                   "--set data.batch_size=4"),
         {"data.npz": npz_bytes(good_x(), good_y())}, patch=_out_of_memory_in_fit),
    # --- output faults: exit 5 -----------------------------------------------------------
    Case("output-is-a-file", NPZ, 5, ("a file, not a folder",),
         {"data.npz": npz_bytes(good_x(), good_y()), "taken": "keep me"},
         args=("--output", "taken")),
    Case("output-cannot-be-created", NPZ, 5, ("/proc/kerapipe-nope",),
         {"data.npz": npz_bytes(good_x(), good_y())}, args=("--output", "/proc/kerapipe-nope")),
    Case("disk-too-full-to-start", NPZ, 5, ("MiB free", "--output"),
         {"data.npz": npz_bytes(good_x(), good_y())}, patch=_no_free_space),
    Case("disk-full-during-checkpoint", with_keys(NPZ, **TWO_EPOCHS), 5,
         ("epoch 2", "No space left on device", "epoch-0001 is intact", "--resume"),
         {"data.npz": npz_bytes(good_x(), good_y())}, patch=_enospc_on_second_checkpoint),
    # --- hostile input: exit 2, before anything runs --------------------------------------
    Case("python-tag", "kerapipe: 1\nname: !!python/object/apply:os.system "
         f"['touch {CANARY}']\n" + NPZ.split("\n", 2)[2], 2, ("forbidden-tag",)),
    Case("python-tag-in-set", NPZ, 2, ("forbidden-tag", "--set"),
         {"data.npz": npz_bytes(good_x(), good_y())},
         args=("--set", f"name=!!python/object/apply:os.system ['touch {CANARY}']")),
    Case("lambda-layer", with_keys(NPZ, **{"[{Dense: {units: 3}}]":
                                           "[{Lambda: {function: 'lambda x: x'}}, "
                                           "{Dense: {units: 3}}]"}),
         2, ("refused-layer", "Lambda")),
    Case("tfsm-layer", with_keys(NPZ, **{"[{Dense: {units: 3}}]":
                                         "[{TFSMLayer: {filepath: /tmp/m}}, "
                                         "{Dense: {units: 3}}]"}),
         2, ("refused-layer", "TFSMLayer")),
    Case("vocabulary-outside-folder", with_keys(NPZ, **{"[{Dense: {units: 3}}]":
                                                        "[{StringLookup: {vocabulary: "
                                                        "/etc/passwd}}, {Dense: {units: 3}}]"}),
         2, ("outside-path", "/etc/passwd")),
    Case("os-system-as-layer", with_keys(NPZ, **{"[{Dense: {units: 3}}]":
                                                 f"[{{os.system: {{command: touch {CANARY}}}}}, "
                                                 "{Dense: {units: 3}}]"}),
         2, ("unknown-import", "os.system")),
    Case("os-system-as-loss", NPZ + "loss: os.system\n", 2, ("unknown-import", "os")),
    Case("imports-not-allowed", with_keys(NPZ, **{"data:": "imports: [evil.py]\ndata:"}), 2,
         ("imports-not-allowed", "evil.py", "--allow-imports"), {"evil.py": EVIL_PY}),
    Case("import-outside-folder", with_keys(NPZ, **{"data:": "imports: [../evil.py]\ndata:"}),
         2, ("outside-path", "../evil.py"), args=("--allow-imports",)),
    Case("import-missing", with_keys(NPZ, **{"data:": "imports: [nothere.py]\ndata:"}),
         2, ("missing-import", "nothere.py"), args=("--allow-imports",)),
    Case("allowed-module-but-not-a-layer", with_keys(
        NPZ, **{"data:": "imports: [os]\ndata:",
                "[{Dense: {units: 3}}]": f"[{{os.system: {{command: touch {CANARY}}}}}]"}),
         2, ("os.system", "not in the imported module"),
         {"data.npz": npz_bytes(good_x(), good_y())}, args=("--allow-imports",)),
    Case("alias-bomb", "kerapipe: 1\n" + "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9 if i else ["1"] * 9) + "]\n"
        for i in range(8)), 2, ("alias-bomb",)),
    Case("deep-nesting", "kerapipe: 1\nname: " + "[" * 5000 + "]" * 5000 + "\n", 2,
         ("too-deep",)),
    Case("oversized-file", "kerapipe: 1\n" + "# padding\n" * 120_000, 2, ("too-large",)),
]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, tree_digest, kerapipe_main):
    """A workspace whose ``runs/`` already holds one finished run, made by kerapipe itself."""
    root = tmp_path_factory.mktemp("faults")
    (root / "earlier").mkdir()
    (root / "earlier" / "data.npz").write_bytes(npz_bytes(good_x(), good_y()))
    (root / "earlier" / "p.yaml").write_text(NPZ)
    assert kerapipe_main("run", root / "earlier" / "p.yaml", "--output", root / "runs") == 0
    (run_dir,) = (root / "runs").iterdir()
    assert (run_dir / "model.keras").is_file()
    return root, run_dir, tree_digest(run_dir)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fault_exits_with_its_code_and_harms_nothing(case, earlier_run, call_main, monkeypatch,
                                                     tmp_path, tree_digest):
    root, run_dir, before = earlier_run
    folder = tmp_path / "case"
    folder.mkdir()
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    (folder / "p.yaml").write_text(case.pipeline)
    (tmp_path / "evil.py").write_text(EVIL_PY)  # outside the pipeline's folder
    case_files = tree_digest(folder)
    monkeypatch.chdir(folder)
    if case.patch:
        case.patch(monkeypatch)

    args = list(case.args)
    if "--output" not in args:
        args += ["--output", str(root / "runs")]
    runs_before = set((root / "runs").iterdir())
    code, out, err = call_main("run", folder / "p.yaml", *args)

    text = out + err
    assert code == case.exit_code, text
    for phrase in case.says:
        assert phrase in text, f"{phrase!r} not in:\n{text}"
    assert "Traceback" not in text and "internal error" not in text
    if case.exit_code == 2:  # refused before anything ran: not even a run folder
        assert set((root / "runs").iterdir()) == runs_before
    assert not (folder / CANARY).exists() and not (tmp_path / CANARY).exists()
    assert tree_digest(run_dir) == before
    assert set(tree_digest(folder)) - {CANARY} == set(case_files), "wrote outside its run"
    assert tree_digest(folder) == case_files


def test_the_table_holds_at_least_30_distinct_data_fault_and_hostile_input_cases():
    """Each case is held to every promise of this module's docstring (by
    test_fault_exits_with_its_code_and_harms_nothing); here the table itself: 30 or more
    cases that differ in what they run (a copied case would count twice), and each kind
    (bad data exit 3, training and output faults exit 4 and 5, hostile input exit 2, part
    of it trying to create the canary) several times."""
    ids = [case.id for case in CASES]
    assert len(set(ids)) == len(ids), "two cases share an id"
    runs = {(case.pipeline, tuple(sorted(case.files.items())), case.args, case.patch)
            for case in CASES}
    assert len(runs) == len(CASES) >= 30
    kinds = collections.Counter({2: "hostile input", 3: "data", 4: "fault", 5: "fault"}
                                [case.exit_code] for case in CASES)
    assert set(kinds) == {"hostile input", "data", "fault"}
    assert min(kinds.values()) >= 5, kinds
    canary = [case.id for case in CASES
              if CANARY in case.pipeline + " ".join(case.args)
              or "evil.py" in case.files or "evil.py" in case.pipeline]
    assert len(canary) >= 5, canary


def test_allowed_imports_do_run_so_the_canary_would_catch_them(tmp_path, call_main):
    """The canary is live: the same evil.py, allowed, runs and leaves it."""
    folder = tmp_path / "case"
    evil_case(folder)
    code, out, err = call_main("run", folder / "p.yaml", "--allow-imports", "--output",
                               tmp_path / "runs")
    assert code == 0, out + err
    assert (folder / CANARY).read_text() == "ran"


CUSTOM_PY = textwrap.dedent("""\
    import keras


    class Scale(keras.layers.Layer):
        def __init__(self, factor=1.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}


    def sparse_ce_from_logits(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    """)


def test_custom_layer_and_loss_from_imports_train_save_and_reload(tmp_path, call_main):
    folder = tmp_path / "case"
    (folder / "lib").mkdir(parents=True)
    (folder / "lib" / "custom.py").write_text(CUSTOM_PY)
    (folder / "data.npz").write_bytes(npz_bytes(good_x(), good_y()))
    (folder / "p.yaml").write_text(with_keys(NPZ, **{
        "data:": "imports: [lib/custom.py]\ndata:",
        "[{Dense: {units: 3}}]": "[{custom.Scale: {factor: 0.5}}, {Dense: {units: 3}}]",
        "train:": "loss: custom.sparse_ce_from_logits\ntrain:"}))
    code, out, err = call_main("run", folder / "p.yaml", "--allow-imports", "--output",
                               tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    # the run keeps the code it was trained with, so its model reloads without the source
    assert (run_dir / "lib" / "custom.py").read_text() == CUSTOM_PY
    (folder / "lib" / "custom.py").unlink()

    code, out, err = call_main("evaluate", run_dir)
    assert code == 2 and "imports-not-allowed" in err and "Traceback" not in out + err
    # refused before TensorFlow is imported (seconds), as a fresh process shows
    probe = ("import sys\nfrom kerapipe.errors import SpecError\n"
             "from kerapipe.saved_run import open_run\n"
             f"try:\n    open_run({str(run_dir)!r})\nexcept SpecError:\n"
             "    print('refused', 'tensorflow' in sys.modules)\n")
    probed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert probed.stdout.strip() == "refused False", probed.stdout + probed.stderr
    code, out, err = call_main("evaluate", run_dir, "--allow-imports")
    assert code == 0, out + err
    assert "accuracy" in out and "loss" not in out  # a custom loss is not re-scored
    np.savez(tmp_path / "inputs.npz", x=good_x(4))
    code, out, err = call_main("predict", run_dir, tmp_path / "inputs.npz", "--allow-imports")
    assert code == 0, out + err
    assert len(out.strip().splitlines()) == 1 + 4


def test_plan_of_a_pipeline_with_imports_needs_allow_imports_too(tmp_path, call_main):
    folder = tmp_path / "case"
    evil_case(folder)
    code, out, err = call_main("plan", folder / "p.yaml")
    assert code == 2 and "imports-not-allowed" in err
    assert not (folder / CANARY).exists()
    code, out, err = call_main("validate", folder / "p.yaml", "--deep")
    assert code == 0 and "deep-skipped" in out
    assert not (folder / CANARY).exists()


def test_compile_pipeline_refuses_imports_unless_allowed(tmp_path):
    from kerapipe import compile_pipeline
    from kerapipe.errors import SpecError

    evil_case(tmp_path)
    with pytest.raises(SpecError, match="imports-not-allowed"):
        compile_pipeline(tmp_path / "p.yaml")
    assert not (tmp_path / CANARY).exists()
    compiled = compile_pipeline(tmp_path / "p.yaml", allow_imports=True)
    assert (tmp_path / CANARY).exists() and compiled.model is not None


def test_a_failed_run_records_why_and_keeps_its_finished_epochs(tmp_path, call_main, monkeypatch):
    import json

    (tmp_path / "data.npz").write_bytes(npz_bytes(good_x(), good_y()))
    (tmp_path / "p.yaml").write_text(with_keys(NPZ, **TWO_EPOCHS))
    _enospc_on_second_checkpoint(monkeypatch)
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 5, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and "No space left" in metrics["stopped"]
    assert metrics["epochs_run"] == 2  # epoch 2 trained; only its checkpoint failed
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["LATEST",
                                                                           "epoch-0001"]
    assert not list(run_dir.rglob(".tmp-*"))


def test_a_label_sorted_source_gives_every_split_every_class(tmp_path):
    """Handled by the shuffled, stratified split (never "the last 10%")."""
    from kerapipe import compile_pipeline

    y = np.sort(np.arange(60) % 3)  # 0 0 ... 1 1 ... 2 2
    (tmp_path / "data.npz").write_bytes(npz_bytes(good_x(60), y))
    (tmp_path / "p.yaml").write_text(NPZ)
    data = compile_pipeline(tmp_path / "p.yaml").data
    for split in (data.train, data.validation, data.test):
        assert set(np.asarray(split.y).tolist()) == {0, 1, 2}


# --- imports: the edges ---------------------------------------------------------------

def imports_case(folder: Path, code: str = CUSTOM_PY, layers: str = "[{custom.Scale: "
                 "{factor: 0.5}}, {Dense: {units: 3}}]", extra: Optional[dict] = None,
                 entry: str = "custom.py", data: Optional[bytes] = None) -> Path:
    """`folder`/p.yaml: the NPZ pipeline importing `entry` (holding `code`), data.npz beside."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / entry).write_text(code)
    (folder / "data.npz").write_bytes(data or npz_bytes(good_x(), good_y()))
    text = with_keys(NPZ, **{"data:": f"imports: [{entry}]\ndata:",
                             "[{Dense: {units: 3}}]": layers, **(extra or {})})
    (folder / "p.yaml").write_text(text)
    return folder / "p.yaml"


def evil_case(folder: Path) -> Path:
    """The NPZ pipeline importing evil.py, which leaves the canary file when it runs."""
    return imports_case(folder, EVIL_PY, layers="[{Dense: {units: 3}}]", entry="evil.py")


def test_an_imported_module_cannot_hand_out_keras_refused_layers(tmp_path, call_main):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "data.npz").write_bytes(npz_bytes(good_x(), good_y()))
    (tmp_path / "p" / "p.yaml").write_text(with_keys(NPZ, **{
        "data:": "imports: [keras.layers]\ndata:",
        "[{Dense: {units: 3}}]": "[{keras.layers.TFSMLayer: {filepath: /tmp/m}}]"}))
    code, out, err = call_main("run", tmp_path / "p" / "p.yaml", "--allow-imports",
                               "--output", tmp_path / "runs")
    assert code == 2 and "not in the imported module" in err, out + err
    assert not (tmp_path / "runs").exists()


def test_a_class_imported_into_a_file_is_not_accepted_either(tmp_path, call_main):
    code_py = "from keras.layers import TFSMLayer\n"
    path = imports_case(tmp_path / "p", code_py, "[{custom.TFSMLayer: {filepath: /tmp/m}}]")
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 2 and "keras" in err and "not in the imported module" in err, out + err


def test_importing_writes_no_bytecode_into_the_pipeline_folder(tmp_path):
    from kerapipe import compile_pipeline

    compile_pipeline(imports_case(tmp_path / "p"), allow_imports=True)
    assert not (tmp_path / "p" / "__pycache__").exists()


def test_a_custom_loss_that_refuses_its_arguments_exits_2_at_the_loss(tmp_path, call_main):
    code_py = CUSTOM_PY + textwrap.dedent("""\

        class Focal(keras.losses.Loss):
            def __init__(self, gamma=2.0, **kwargs):
                super().__init__(**kwargs)
                self.gamma = gamma

            def call(self, y_true, y_pred):
                return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, True)
        """)
    path = imports_case(tmp_path / "p", code_py, extra={
        "train:": "loss: {name: custom.Focal, gama: 1}\ntrain:"})
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 2 and "keras-arguments" in err and "gama" in err, out + err


def test_an_error_inside_imported_code_during_training_exits_4_naming_the_imports(
        tmp_path, call_main):
    code_py = CUSTOM_PY.replace("def call(self, x):\n        return x * self.factor",
                                "def call(self, x, training=None):\n        if training:\n"
                                "            raise RuntimeError('boom in my layer')\n"
                                "        return x * self.factor")
    assert "boom" in code_py
    path = imports_case(tmp_path / "p", code_py)
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 4, out + err
    assert "imported code (custom.py)" in err and "boom in my layer" in err
    assert "internal error" not in err


def test_a_nan_loss_with_a_custom_layer_keeps_the_last_checkpoint_and_exits_4(
        tmp_path, call_main):
    # epoch 1 is fine (tiny rate); the schedule then jumps to 1e38 and the loss overflows
    path = imports_case(tmp_path / "p", extra={"train: {epochs: 1}": (
        "optimizer:\n  name: sgd\n  learning_rate:\n    ExponentialDecay: "
        "{initial_learning_rate: 0.001, decay_steps: 3, decay_rate: 1.0e+38, staircase: true}\n"
        "train: {epochs: 4}")}, data=npz_bytes(good_x() * 1e4, good_y()))
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 4 and "last good checkpoint" in err, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "model.keras").is_file()


def test_the_copy_of_a_linked_import_is_kept_at_its_imports_path(tmp_path, call_main):
    folder = tmp_path / "p"
    path = imports_case(folder, entry="impl.py")
    (folder / "custom.py").symlink_to(folder / "impl.py")
    path.write_text(path.read_text().replace("imports: [impl.py]", "imports: [custom.py]"))
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (run_dir / "custom.py").read_text() == CUSTOM_PY and not (run_dir / "impl.py").exists()
    code, out, err = call_main("evaluate", run_dir, "--allow-imports")
    assert code == 0, out + err


def test_resume_refuses_changed_imported_code_unless_forced(tmp_path, call_main):
    import json

    path = imports_case(tmp_path / "p", extra=TWO_EPOCHS)
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 0, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert set(record["imports"]) == {"custom.py"}
    record["status"] = "interrupted"  # pretend it stopped, so it can be resumed
    (run_dir / "run.json").write_text(json.dumps(record))
    changed = CUSTOM_PY.replace("x * self.factor", "x * self.factor * 2")
    (tmp_path / "p" / "custom.py").write_text(changed)

    code, out, err = call_main("run", "--resume", run_dir, "--allow-imports")
    assert code == 2 and "imported code changed" in err and "custom.py" in err, out + err
    assert (run_dir / "custom.py").read_text() == CUSTOM_PY
    code, out, err = call_main("run", "--resume", run_dir, "--allow-imports", "--force")
    assert code == 0, out + err
    assert (run_dir / "custom.py").read_text() == changed


def test_a_failed_final_save_marks_the_run_failed_and_exits_5(tmp_path, call_main,
                                                              monkeypatch):
    import json

    from kerapipe.errors import OutputError
    from kerapipe.run_folder import RunFolder

    def full_disk(self, model):
        raise OutputError(f"cannot write {self.path / 'model.keras'}: No space left on device.")

    monkeypatch.setattr(RunFolder, "save_model", full_disk)
    (tmp_path / "data.npz").write_bytes(npz_bytes(good_x(), good_y()))
    (tmp_path / "p.yaml").write_text(NPZ)
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 5 and "No space left" in err, out + err
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert not (run_dir / "model.keras").exists()


def test_an_image_with_data_after_its_end_marker_is_accepted(tmp_path):
    """The end-marker check only raises a suspicion; a file TensorFlow decodes is kept."""
    from kerapipe import compile_pipeline

    files = image_folder({"pics/a/0.png": png(7) + b"appended by a camera app" * 300})
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    (tmp_path / "p.yaml").write_text(IMAGES)
    assert len(compile_pipeline(tmp_path / "p.yaml").data.train) > 0


def test_an_imported_function_used_as_a_layer_is_refused(tmp_path, call_main):
    path = imports_case(tmp_path / "p", layers="[{custom.sparse_ce_from_logits: {}}]")
    code, out, err = call_main("run", path, "--allow-imports", "--output", tmp_path / "runs")
    assert code == 2 and "not a keras.layers.Layer subclass" in err, out + err


def test_an_image_whose_name_is_not_utf8_is_a_data_error(tmp_path, call_main):
    for name, content in image_folder().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    bad = os.path.join(os.fsencode(tmp_path / "pics" / "a"), b"caf\xe9.png")
    with open(bad, "wb") as handle:
        handle.write(png(9))
    (tmp_path / "p.yaml").write_text(IMAGES)
    code, out, err = call_main("run", tmp_path / "p.yaml", "--output", tmp_path / "runs")
    assert code == 3 and "not valid UTF-8" in err and "internal error" not in err, out + err
