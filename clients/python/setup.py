"""Build hook of costestimator-client: assemble the package from the repo's `generated/` and `protos/`.

Why a hook: the generated tree is committed once (scripts/gen_protos.py writes it); copying it here would be a
second copy to keep fresh. Every build copies whatever the two trees hold (new packages, new .proto files, new
imports) into `_assembled/` (git-ignored), and the dependency floors come from the versions the code was generated
with, so a stub can never be installed beside a runtime it refuses. Built from an sdist (no repo around it), the
`_assembled/` tree it carries is used as is.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GENERATED = REPO / "generated"
PROTOS = REPO / "protos"
ASSEMBLED = HERE / "_assembled"
PACKAGE_FILES = ("*.py", "*.pyi", "py.typed")


def assemble() -> None:
    """Fresh `_assembled/`: every module and type stub of generated/, every .proto of protos/ beside them."""
    if ASSEMBLED.exists():
        shutil.rmtree(ASSEMBLED)
    for source in GENERATED.rglob("*"):
        if source.is_file() and "__pycache__" not in source.parts and any(source.match(p) for p in PACKAGE_FILES):
            target = ASSEMBLED / source.relative_to(GENERATED)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for proto in PROTOS.rglob("*.proto"):
        target = ASSEMBLED / proto.relative_to(PROTOS)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(proto, target)


def _generated_versions() -> tuple[str, str]:
    """(grpcio, protobuf) versions the stubs were generated with; the stubs refuse older runtimes."""
    grpc_versions = {m.group(1) for f in ASSEMBLED.rglob("*_grpc.py")
                     for m in [re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", f.read_text())] if m}
    pb_versions = {m.group(1) for f in ASSEMBLED.rglob("*_pb2.py")
                   for m in [re.search(r"# Protobuf Python Version: ([\d.]+)", f.read_text())] if m}
    if len(grpc_versions) != 1 or len(pb_versions) != 1:
        raise SystemExit(f"generated/ mixes or lacks generator versions: grpc {grpc_versions}, protobuf {pb_versions}")
    return grpc_versions.pop(), pb_versions.pop()


def requirements() -> list[str]:
    grpc_version, pb_version = _generated_versions()
    pb_major = int(pb_version.split(".")[0])
    return [
        f"grpcio>={grpc_version},<2",
        f"protobuf>={pb_version},<{pb_major + 1}",  # gencode runs on the same major, not older than itself
        "googleapis-common-protos>=1.76.0,<2",  # google.rpc.*, google.type.*, google.api.* messages
    ]


if (GENERATED / "costestimator").is_dir():
    assemble()
elif not ASSEMBLED.is_dir():
    raise SystemExit(f"neither {GENERATED} nor an assembled tree: build from the repo or from its sdist")

setup(
    package_dir={"": "_assembled"},
    packages=find_packages("_assembled"),
    package_data={"": ["*.pyi", "py.typed", "*.proto"]},
    install_requires=requirements(),
)
