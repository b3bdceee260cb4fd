"""Generate the Python code of the gridapi.v1 contract from ``proto/gridapi/v1/*.proto``.

Writes ``gridcat_pipelines/api/gen/gridapi/v1/``: messages (``*_pb2.py`` and ``.pyi``, Google's
protobuf runtime), Connect services and clients (``*_connect.py``, connectrpc with
``protobuf=google``) and grpcio stubs (``*_pb2_grpc.py``). The imports protoc writes as
``from gridapi.v1 import …`` are rewritten to the package path, so no top-level ``gridapi``
package is needed. Every tool is pinned in pyproject.toml's dev extra (grpcio-tools is protoc,
protoc-gen-connectrpc the Connect plugin), so the output is the same byte for byte everywhere.

Run:   .venv/bin/python scripts/generate_proto.py            (rewrite the checked-in code)
       .venv/bin/python scripts/generate_proto.py --check    (exit 1 and name the files that drifted)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROTO_ROOT = REPO / "proto"
PACKAGE = "gridcat_pipelines.api.gen"
OUT = REPO / "gridcat_pipelines" / "api" / "gen"
PACKAGE_DIRS = ("", "gridapi", "gridapi/v1")
INIT_TEXT = '"""Generated from proto/ by scripts/generate_proto.py. DO NOT EDIT."""\n'


def proto_files() -> list[Path]:
    """The contract's ``.proto`` files, in a stable order."""
    return sorted((PROTO_ROOT / "gridapi" / "v1").glob("*.proto"))


def _plugin() -> str:
    found = shutil.which("protoc-gen-connectrpc") or str(Path(sys.executable).parent / "protoc-gen-connectrpc")
    if not Path(found).exists():
        raise SystemExit("protoc-gen-connectrpc not found: run bash scripts/setup (it is in the dev extra)")
    return found


def generate(out: Path) -> list[Path]:
    """Generate every file into ``out`` (the package root ``gen/``); returns the files written."""
    with tempfile.TemporaryDirectory() as raw:
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            f"--plugin=protoc-gen-connectrpc={_plugin()}",
            f"--connectrpc_out={raw}",
            "--connectrpc_opt=protobuf=google",
            *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
        ]
        subprocess.run(command, check=True, cwd=PROTO_ROOT)
        written: list[Path] = []
        for src in sorted(Path(raw).rglob("*.py*")):
            text = src.read_text()
            text = text.replace("from gridapi.v1 import", f"from {PACKAGE}.gridapi.v1 import")
            target = out / src.relative_to(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            written.append(target)
    for sub in PACKAGE_DIRS:
        init = out / sub / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(INIT_TEXT)
        written.append(init)
    return written


def drifted(checked_in: Path = OUT) -> list[str]:
    """Files that differ between the checked-in code and a fresh generation (missing or extra too)."""
    with tempfile.TemporaryDirectory() as fresh:
        generate(Path(fresh))
        want = {p.relative_to(fresh).as_posix() for p in Path(fresh).rglob("*") if p.is_file()}
        have = {
            p.relative_to(checked_in).as_posix()
            for p in checked_in.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
        return sorted(
            name
            for name in want | have
            if name not in want
            or name not in have
            or not filecmp.cmp(Path(fresh) / name, checked_in / name, shallow=False)
        )


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated code, or with ``--check`` report drift."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with a fresh generation, change nothing")
    args = parser.parse_args(argv)
    if args.check:
        changed = drifted()
        for name in changed:
            print(f"drifted: gridcat_pipelines/api/gen/{name}")
        if changed:
            print("run: .venv/bin/python scripts/generate_proto.py", file=sys.stderr)
        return 1 if changed else 0
    if OUT.exists():
        shutil.rmtree(OUT)
    for path in generate(OUT):
        print(path.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
