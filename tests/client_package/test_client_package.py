"""Issue 10 §4: the costestimator-client wheel, installed alone in a clean venv, calls a running server.

Needs the package index for grpcio/protobuf/googleapis-common-protos: offline it skips, unless
COSTEST_REQUIRE_PYPI=1 (set by .ci/run) makes that a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from grpc_status import rpc_status

from costestimator.v1 import estimate_service_pb2, estimate_service_pb2_grpc
from google.rpc import error_details_pb2
from tests.client_package.live_server import LiveServer
from tests.conftest import ROOT, unavailable

pytestmark = pytest.mark.slow

CLIENT_DIR = ROOT / "clients" / "python"
EXAMPLE = CLIENT_DIR / "examples" / "estimate_and_errors.py"
ALLOWED_DISTRIBUTIONS = {"costestimator-client", "grpcio", "protobuf", "googleapis-common-protos",
                         "pip", "setuptools", "wheel", "typing-extensions"}
OFFLINE_SIGNS = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                 "Network is unreachable", "No matching distribution found", "ConnectTimeout", "ReadTimeout")


def _run(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600,
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: the venv must find costestimator in the installed wheel, not in the repo."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel and what it depends on; its python."""
    root = tmp_path_factory.mktemp("client-package")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", CLIENT_DIR, cwd=root)
    if built.returncode != 0 and any(sign in built.stdout + built.stderr for sign in OFFLINE_SIGNS):
        unavailable("pypi", f"cannot build the wheel offline:\n{built.stderr[-1500:]}")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    wheels = sorted((root / "dist").glob("costestimator_client-*.whl"))
    assert len(wheels) == 1, wheels
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    installed = _run(python, "-m", "pip", "install", "--timeout", "30", wheels[0], cwd=root, env=_clean_env())
    if installed.returncode != 0 and any(sign in installed.stdout + installed.stderr for sign in OFFLINE_SIGNS):
        unavailable("pypi", f"the package index is not reachable:\n{installed.stderr[-1500:]}")
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    return python


def test_the_wheel_depends_only_on_grpcio_protobuf_and_common_protos(client_venv: Path) -> None:
    listed = _run(client_venv, "-m", "pip", "list", "--format=json", cwd=client_venv.parent, env=_clean_env())
    names = {entry["name"].lower().replace("_", "-") for entry in json.loads(listed.stdout)}
    assert {"costestimator-client", "grpcio", "protobuf", "googleapis-common-protos"} <= names
    assert names <= ALLOWED_DISTRIBUTIONS, f"the client drags in {sorted(names - ALLOWED_DISTRIBUTIONS)}"
    server = _run(client_venv, "-c", "import server", cwd=client_venv.parent, env=_clean_env())
    assert server.returncode != 0, "the server package must not be installed with the client"


def test_the_wheel_holds_every_generated_module_type_stub_and_proto(client_venv: Path) -> None:
    want = {str(p.relative_to(ROOT / "generated")) for p in (ROOT / "generated").rglob("*")
            if p.suffix in (".py", ".pyi") or p.name == "py.typed"}
    want |= {str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto")}
    script = ("import costestimator, pathlib, json; root = pathlib.Path(costestimator.__file__).parent.parent; "
              "print(json.dumps([str(p.relative_to(root)) for p in (root / 'costestimator').rglob('*') "
              "if p.is_file() and '__pycache__' not in p.parts]))")
    found = _run(client_venv, "-c", script, cwd=client_venv.parent, env=_clean_env())
    assert found.returncode == 0, found.stderr
    have = set(json.loads(found.stdout))
    want_here = {name for name in want if name.startswith("costestimator/")}
    assert want_here and want_here <= have, sorted(want_here - have)
    located = _run(client_venv, "-c", "import costestimator; print(costestimator.__file__)",
                   cwd=client_venv.parent, env=_clean_env())
    assert "site-packages" in located.stdout, located.stdout


def _example_module() -> ModuleType:
    """The example's own request builder, so the expectation is computed from what it sends."""
    spec = importlib.util.spec_from_file_location("client_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_output(server: LiveServer) -> list[str]:
    """What the example must print, from the same calls made here with the repo's stubs and grpcio-status."""
    example = _example_module()
    metadata = (("authorization", f"Bearer {server.token}"),)
    codes = {code.value[0]: code.name for code in grpc.StatusCode}
    with grpc.insecure_channel(server.target) as channel:
        stub = estimate_service_pb2_grpc.EstimateServiceStub(channel)
        replies = list(stub.StreamEstimates(example.request(example.MEMBER), metadata=metadata, timeout=30))
        lines = sorted(f"stream: {r.estimate.provider_id} member_pays={example.money(r.estimate.member_pays):.2f} "
                       f"plan_pays={example.money(r.estimate.plan_pays):.2f} status={codes[r.estimate.status.code]}"
                       for r in replies)
        for member in (example.common_pb2.Member(), example.INACTIVE_MEMBER):
            streamed = example.request(member)
            unary = estimate_service_pb2.EstimateRequest(member=member, product_type=streamed.product_type,
                                                         service=streamed.service, providers=streamed.providers)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Estimate(unary, metadata=metadata, timeout=30)
            error = caught.value
            assert isinstance(error, grpc.Call)
            lines.append(f"error: {error.code().name}")
            status = rpc_status.from_call(error)
            for detail in status.details if status else ():
                bad, info = error_details_pb2.BadRequest(), error_details_pb2.ErrorInfo()
                if detail.Unpack(bad):
                    lines += [f"  field {v.field}: {v.description}" for v in bad.field_violations]
                elif detail.Unpack(info):
                    lines.append(f"  reason {info.reason} ({info.domain}) {dict(sorted(info.metadata.items()))}")
    return lines


def test_the_typed_example_calls_a_running_server_with_the_installed_package(
        client_venv: Path, live_server: LiveServer) -> None:
    ran = _run(client_venv, EXAMPLE, "--target", live_server.target, "--token", live_server.token,
               cwd=client_venv.parent, env=_clean_env(), timeout=120)
    assert ran.returncode == 0, ran.stderr[-3000:]
    printed = ran.stdout.splitlines()
    streamed = [line for line in printed if line.startswith("stream: ")]
    expected = _expected_output(live_server)
    assert sorted(streamed) + printed[len(streamed):] == expected
    assert len(streamed) == 3
    assert "error: INVALID_ARGUMENT" in printed and any(line.startswith("  field member.") for line in printed)
    assert "error: NOT_FOUND" in printed


def test_the_cli_runs_on_the_client_package_alone(client_venv: Path, live_server: LiveServer) -> None:
    """costestimator_cli imports `costestimator.v1` the same way whether the stubs come from the wheel or
    from the repo's generated/: here only the wheel (and the CLI's own typer + rich) is installed."""
    added = _run(client_venv, "-m", "pip", "install", "--timeout", "30", "typer", "rich", cwd=client_venv.parent,
                 env=_clean_env())
    if added.returncode != 0 and any(sign in added.stdout + added.stderr for sign in OFFLINE_SIGNS):
        unavailable("pypi", f"the package index is not reachable:\n{added.stderr[-1500:]}")
    assert added.returncode == 0, added.stderr[-3000:]
    env = {**_clean_env(), "PYTHONPATH": str(ROOT), "COSTESTIMATOR_TOKEN": live_server.token}
    ran = _run(client_venv, "-c", "import costestimator.v1, costestimator_cli.app as a; "
               "print(costestimator.v1.__file__); a.main()",
               "--target", live_server.target, "estimate", "--example", "--json", cwd=client_venv.parent, env=env)
    assert ran.returncode == 0, ran.stderr[-3000:]
    location, _, body = ran.stdout.partition("\n")
    assert "site-packages" in location
    assert len(json.loads(body)["estimates"]) == 20
