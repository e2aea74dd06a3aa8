"""Check the shipped JSON Schema in a real editor back end: yaml-language-server over LSP.

What an editor shows is what yaml-language-server makes of ``schema/pipeline.schema.json``
(its messages come from its own fork of vscode-json-languageservice), so this script asks
the server itself, over stdio, about a few pipeline files: the diagnostics of a misspelt
layer (``Dens:``) and of typed arguments (``units: ten``, ``activation: rellu``), the
completions in a ``model.layers`` item, inside ``Dense: {}``, after ``activation:``,
``padding:`` and ``loss:``, and the hover text on ``Dense`` and on ``units``; and it opens
every ``pipelines/*.yaml`` (their own ``$schema`` modeline), which must get no diagnostic.
It prints what each returned.

Install the server once, outside the repository (nothing here installs it)::

    npm install --prefix /tmp/yaml-ls yaml-language-server
    python scripts/check_language_server.py            # finds /tmp/yaml-ls
    YAML_LANGUAGE_SERVER=/path/to/node_modules/.bin/yaml-language-server \\
        python scripts/check_language_server.py --json  # the findings as JSON

Exit status: 0 when every expectation holds (``EXPECTATIONS``), 1 when one does not, 2
when the server (or ``node``) is not found.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_FILE = ROOT / "schema" / "pipeline.schema.json"
PIPELINES = ROOT / "pipelines"
SERVER_ENV = "YAML_LANGUAGE_SERVER"
KNOWN_PREFIXES = (Path("/tmp/yaml-ls"),)  # npm install --prefix <one> (never the repository)
TIMEOUT_S = 60.0

# A pipeline whose last layer line the cases replace (`@LAYER@`); `|` in a case marks the
# cursor of its request.
PIPELINE = """\
# yaml-language-server: $schema=@SCHEMA@
kerapipe: 1
data:
  source: {sample: mnist}
model:
  layers:
    - Flatten
@LAYER@
loss: sparse_categorical_crossentropy
"""

# (name, request, the layer lines with `|` at the cursor): what the server is asked.
CASES = [
    ("unknown layer Dens", "diagnostics", "    - Dens: {units: 10}|"),
    ("typed arguments", "diagnostics", "    - Dense: {units: ten, activation: rellu}|"),
    ("completion in a model.layers item", "completion", "    - |"),
    # yaml-language-server 1.x completes nothing in an empty flow mapping (not even
    # kerapipe's own `output: {}`), so the block form and a typed letter are asked too.
    ("completion inside Dense: {}", "completion", "    - Dense: {|}"),
    ("completion inside Dense: {u}", "completion", "    - Dense: {u|}"),
    ("completion inside Dense: (block)", "completion", "    - Dense:\n        |"),
    ("completion after activation:", "completion",
     "    - Dense:\n        units: 10\n        activation: |"),
    ("completion after padding:", "completion",
     "    - Conv2D:\n        filters: 8\n        kernel_size: 3\n        padding: |"),
    ("completion after loss:", "completion", "@LOSS@"),
    ("unknown schedule", "diagnostics", "@END@optimizer: {name: adam, learning_rate: "
     "{ExponentialDecayy: {initial_learning_rate: 0.1, decay_steps: 10}}}|"),
    ("unknown bare callback", "diagnostics", "@END@train: {callbacks: [TerminateOnNa]}|"),
    ("hover on Dense", "hover", "    - De|nse: {units: 10}"),
    ("hover on units", "hover", "    - Dense: {un|its: 10}"),
]


def find_server(environ: Optional[dict] = None) -> Optional[list[str]]:
    """The command that starts yaml-language-server: ``$YAML_LANGUAGE_SERVER`` (the
    ``.bin`` script or the package's folder), else a known ``npm --prefix`` folder;
    ``None`` when there is none or ``node`` is missing."""
    environ = os.environ if environ is None else environ
    node = shutil.which("node")
    if node is None:
        return None
    candidates = [Path(environ[SERVER_ENV])] if environ.get(SERVER_ENV) else [
        prefix / "node_modules" / "yaml-language-server" for prefix in KNOWN_PREFIXES]
    for candidate in candidates:
        if candidate.is_dir() and (candidate / "bin" / "yaml-language-server").exists():
            candidate = candidate / "bin" / "yaml-language-server"
        if candidate.is_file():
            return [node, str(candidate.resolve()), "--stdio"]
    return None


class LspClient:
    """A minimal LSP client: JSON-RPC messages framed by ``Content-Length`` headers over
    the server's stdin/stdout; a reader thread files responses by id and keeps the
    notifications, and answers the server's own requests (configuration, registration)."""

    def __init__(self, command: list[str], settings: dict) -> None:
        self.settings = settings
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.next_id = 0
        self.responses: dict[int, Any] = {}
        self.notifications: list[dict] = []
        self.changed = threading.Condition()
        self.writing = threading.Lock()  # the reader thread answers the server's requests
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        with self.writing:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()

    def _read(self) -> None:
        stream = self.process.stdout
        while True:
            length = None
            while True:  # headers, up to the blank line
                line = stream.readline()
                if not line:
                    return  # the server exited
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            message = json.loads(stream.read(length or 0))
            if "method" in message and "id" in message:
                self._answer(message)
            with self.changed:
                if "method" in message:
                    self.notifications.append(message)
                else:
                    self.responses[message["id"]] = message
                self.changed.notify_all()

    def _answer(self, request: dict) -> None:
        result: Any = None
        if request["method"] == "workspace/configuration":
            result = [self.settings.get(item.get("section", ""), None)
                      for item in request["params"]["items"]]
        self._send({"id": request["id"], "result": result})

    def wait_for(self, found: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
        with self.changed:
            if not self.changed.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError("yaml-language-server did not answer in time")
            return found()

    def request(self, method: str, params: dict) -> Any:
        self.next_id += 1
        request_id = self.next_id
        self._send({"id": request_id, "method": method, "params": params})
        response = self.wait_for(lambda: self.responses.get(request_id))
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    def notify(self, method: str, params: dict) -> None:
        self._send({"method": method, "params": params})

    def diagnostics(self, uri: str, after: int) -> list[dict]:
        """The first diagnostics published for ``uri`` after notification ``after``."""
        def published() -> Optional[list]:
            for message in self.notifications[after:]:
                if (message["method"] == "textDocument/publishDiagnostics"
                        and message["params"]["uri"] == uri):
                    return message["params"]["diagnostics"]
            return None
        return self.wait_for(published)

    def close(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=10)
        except (OSError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)  # it ends at the closed stdout's end
        self.process.stdin.close()
        self.process.stdout.close()


def _document(layer_lines: str, schema: Path) -> tuple[str, dict]:
    """The case's file text (the cursor mark removed) and the cursor's LSP position."""
    text = PIPELINE.replace("@SCHEMA@", schema.resolve().as_uri())
    if layer_lines == "@LOSS@":  # the cursor after `loss: `, the value cleared
        text = text.replace("@LAYER@\n", "    - Dense: {units: 10}\n")
        text = text.replace("loss: sparse_categorical_crossentropy", "loss: |")
    elif layer_lines.startswith("@END@"):  # top-level lines after the pipeline's
        text = text.replace("@LAYER@\n", "    - Dense: {units: 10}\n") + layer_lines[5:]
    else:
        text = text.replace("@LAYER@", layer_lines)
    before = text[:text.index("|")]
    position = {"line": before.count("\n"), "character": len(before.rsplit("\n", 1)[-1])}
    return text.replace("|", "", 1), position


def _labels(result: Any) -> list[str]:
    items = result.get("items", []) if isinstance(result, dict) else (result or [])
    return [item["label"] for item in items]


def _hover_text(result: Any) -> str:
    if not result:
        return ""
    contents = result["contents"]
    if isinstance(contents, dict):
        return contents.get("value", "")
    return "\n".join(c if isinstance(c, str) else c.get("value", "") for c in contents)


SETTINGS = {"yaml": {"validate": True, "hover": True, "completion": True,
                     "schemaStore": {"enable": False}}}


def start_client(command: list[str], root: Path) -> LspClient:
    """A started and initialised yaml-language-server with ``root`` as its workspace."""
    client = LspClient(command, SETTINGS)
    client.request("initialize", {
        "processId": os.getpid(), "rootUri": root.as_uri(),
        "capabilities": {"textDocument": {
            "completion": {"completionItem": {"snippetSupport": True,
                                              "documentationFormat": ["markdown"]}},
            "hover": {"contentFormat": ["markdown", "plaintext"]},
            "publishDiagnostics": {}},
            "workspace": {"configuration": True}}})
    client.notify("initialized", {})
    client.notify("workspace/didChangeConfiguration", {"settings": SETTINGS})
    return client


def open_file(client: LspClient, path: Path, text: str) -> list[tuple[int, str]]:
    """Open ``path`` (its ``text``) and wait for its diagnostics: ``[(line, message)]``
    (the schema is loaded once they come)."""
    seen = len(client.notifications)
    client.notify("textDocument/didOpen", {"textDocument": {
        "uri": path.as_uri(), "languageId": "yaml", "version": 1, "text": text}})
    return [(d["range"]["start"]["line"] + 1, d["message"])
            for d in client.diagnostics(path.as_uri(), seen)]


def ask_server(command: list[str], schema: Path = SCHEMA_FILE,
               pipelines: tuple[Path, ...] = ()) -> dict:
    """Open each case's file in yaml-language-server and record what it returns:
    ``{case name: diagnostics [(line, message)] | completion labels | hover text}``, and
    under ``shipped pipelines`` the diagnostics of each of ``pipelines`` (their own
    ``$schema`` modeline) as ``[("file:line", message)]``."""
    findings: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        client = start_client(command, Path(folder))
        try:
            for number, (name, kind, layer_lines) in enumerate(CASES):
                text, position = _document(layer_lines, schema)
                path = Path(folder) / f"case{number}.yaml"
                path.write_text(text, "utf-8")
                diagnostics = open_file(client, path, text)
                at = {"textDocument": {"uri": path.as_uri()}, "position": position}
                if kind == "diagnostics":
                    findings[name] = diagnostics
                elif kind == "completion":
                    findings[name] = _labels(client.request("textDocument/completion", at))
                else:
                    findings[name] = _hover_text(client.request("textDocument/hover", at))
            if pipelines:
                findings["shipped pipelines"] = [
                    (f"{path.name}:{line}", message) for path in pipelines
                    for line, message in open_file(client, path.resolve(),
                                                   path.read_text("utf-8"))]
        finally:
            client.close()
    return findings


# What a teaching schema must make the server say: (case, test of its finding, meaning).
EXPECTATIONS: list[tuple[str, Callable[[Any], bool], str]] = [
    ("unknown layer Dens", lambda d: any("Unknown layer" in m for _, m in d)
     and not any("Missing property" in m for _, m in d), "an unknown-layer message at Dens"),
    ("typed arguments", lambda d: any('Expected "integer"' in m for _, m in d),
     "units: ten is not an integer"),
    ("typed arguments", lambda d: any("Unknown activation" in m for _, m in d),
     "rellu is not an activation"),
    ("completion in a model.layers item", lambda c: {"Dense", "Conv2D", "Flatten"} <= set(c),
     "the layer names"),
    ("completion inside Dense: {u}", lambda c: {"units", "use_bias"} <= set(c),
     "Dense's arguments"),
    ("completion inside Dense: (block)", lambda c: {"units", "activation", "use_bias"}
     <= set(c), "Dense's arguments"),
    ("completion after activation:", lambda c: {"relu", "softmax"} <= set(c),
     "the activation names"),
    ("completion after padding:", lambda c: {"valid", "same"} <= set(c), "valid and same"),
    ("completion after loss:", lambda c: {"sparse_categorical_crossentropy", "mse",
                                          "SparseCategoricalCrossentropy"} <= set(c),
     "the loss names and aliases"),
    ("unknown schedule", lambda d: [m[:17] for _, m in d] == ["Unknown schedule:"],
     "an unknown-schedule message"),
    ("unknown bare callback", lambda d: [m[:17] for _, m in d] == ["Unknown callback:"],
     "an unknown-callback message"),
    ("hover on Dense", lambda h: "keras.layers.Dense" in h and "densely-connected" in h,
     "Dense's title and docstring summary"),
    ("hover on units", lambda h: "dimensionality of the output space" in h,
     "the units argument's text"),
    ("shipped pipelines", lambda d: d == [], "no diagnostics on pipelines/*.yaml"),
]


def unmet(findings: dict) -> list[str]:
    """The expectations the findings do not meet, in words."""
    return [f"{case}: expected {meaning}" for case, holds, meaning in EXPECTATIONS
            if case in findings and not holds(findings[case])]


def summary(findings: dict, width: int = 110) -> str:
    """The transcript summary: one block per case, long lists and texts cut."""
    lines = []
    for name, found in findings.items():
        if isinstance(found, str):
            shown = " ".join(found.split())
            lines.append(f"{name}: {shown[:width]}{'...' if len(shown) > width else ''}")
        elif found and isinstance(found[0], (list, tuple)):
            lines.append(f"{name}:")
            lines += [f"  line {line}: {message}" for line, message in found]
        elif not found:
            lines.append(f"{name}: nothing")
        else:
            head = ", ".join(found[:12])
            lines.append(f"{name}: {len(found)} items: {head}{', ...' if len(found) > 12 else ''}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--schema", type=Path, default=SCHEMA_FILE, help="the schema file")
    args = parser.parse_args(argv)
    command = find_server()
    if command is None:
        print(f"yaml-language-server not found: set {SERVER_ENV} or run `npm install "
              f"--prefix /tmp/yaml-ls yaml-language-server` (node must be on PATH)",
              file=sys.stderr)
        return 2
    findings = ask_server(command, args.schema, tuple(sorted(PIPELINES.glob("*.yaml"))))
    print(json.dumps(findings, indent=1) if args.json else summary(findings))
    problems = unmet(findings)
    for problem in problems:
        print(f"UNMET {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
