"""Regenerate `generated/` from `protos/`: messages, gRPC stubs, mypy-protobuf type stubs and a descriptor set.

`generated/` is a source root, not a package: protoc derives import paths from the proto tree
(`costestimator/v1/...`), so the proto tree *is* the Python package tree and nothing is rewritten.
Imported googleapis files (`third_party/googleapis`) get no code here: `googleapis-common-protos` ships their modules.

`DESCRIPTOR_SET` holds our files *with* their comments (source info), which the `_pb2` modules drop: server
reflection serves it so that `grpcurl describe` shows the documentation (server/api/reflection.py).

    python scripts/gen_protos.py           # regenerate in place
    python scripts/gen_protos.py --check   # exit 1 if generated/ is stale (CI); silent when it is fresh
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
GENERATED = ROOT / "generated"
DESCRIPTOR_SET = Path("costestimator") / "v1" / "descriptors.binpb"  # relative to generated/


def _well_known_protos() -> Path:
    import grpc_tools

    return Path(grpc_tools.__file__).parent / "_proto"


def generate(out: Path) -> None:
    """Run protoc (from grpcio-tools, pinned to the runtime grpcio) into `out`."""
    (out / DESCRIPTOR_SET).parent.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    bin_dir = str(Path(sys.executable).parent)  # protoc-gen-mypy* live next to the interpreter
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc",
        f"-I{PROTOS}", f"-I{GOOGLEAPIS}", f"-I{_well_known_protos()}",
        f"--python_out={out}", f"--grpc_python_out={out}",
        f"--mypy_out=quiet:{out}", f"--mypy_grpc_out=quiet:{out}",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}", "--include_source_info",
        *sources,
    ]
    done = subprocess.run(cmd, cwd=PROTOS, env=env, capture_output=True, text=True)
    if done.returncode != 0:  # protoc's own words only when it failed
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"protoc failed (exit {done.returncode})")
    for directory in [p for p in out.rglob("*") if p.is_dir()]:
        (directory / "__init__.py").touch()
        (directory / "py.typed").touch()


def _tree(root: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def stale_files() -> list[str]:
    """Names of files that differ between generated/ and a fresh generation."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "generated"
        generate(fresh)
        want, have = _tree(fresh), _tree(GENERATED) if GENERATED.exists() else {}
        names = sorted(set(want) | set(have))
        return [n for n in names if n not in want or n not in have or not filecmp.cmp(want[n], have[n], shallow=False)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if generated/ is stale; change nothing")
    args = parser.parse_args()
    if args.check:
        stale = stale_files()
        if stale:
            print("generated/ is stale; run `python scripts/gen_protos.py`. Differs:", *stale, sep="\n  ")
            return 1
        return 0  # nothing to say: up to date
    if GENERATED.exists():
        shutil.rmtree(GENERATED)
    generate(GENERATED)
    print(f"generated {len(_tree(GENERATED))} files into {GENERATED.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
