"""The documented, governed contract: comments and field behaviors in the protos, served through reflection (v1 and
v1alpha) to grpcurl, and `.ci/buf-breaking` on real git histories."""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from costestimator.v1 import estimate_service_pb2
from google.api import field_behavior_pb2
from google.rpc import error_details_pb2, status_pb2
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection_pb2

from server.api.reflection import DESCRIPTOR_SET, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, source_info
from server.app import Application
from tests.conftest import ROOT
from tests.test_foundation import _grpcurl

# every compiled file of the package, found on disk so that a new .proto is covered without editing this list
OUR_FILES = [importlib.import_module(f"costestimator.v1.{p.stem}").DESCRIPTOR
             for p in sorted((ROOT / "generated" / "costestimator" / "v1").glob("*_pb2.py"))
             if not p.stem.endswith("_grpc")]
SERVICES = {"costestimator.v1.BenefitService", "costestimator.v1.EstimateService",
            "costestimator.v1.EligibilityService"}
# field_behavior cannot annotate a oneof: the oneofs a request must set (their comments say "exactly one")
REQUIRED_ONEOFS = {"costestimator.v1.EstimateFromEligibilityRequest.eligibility"}
STREAM_ESTIMATES_DOC = "The same request; each provider's result is sent as soon as it is ready."


# ---- reflection over a real socket, both protocol versions ------------------------------------------------------

async def _reflect(app: Application, service: str,
                   *requests: reflection_pb2.ServerReflectionRequest) -> list[reflection_pb2.ServerReflectionResponse]:
    """One ServerReflectionInfo stream on `service` (v1 and v1alpha share the wire format)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        info = channel.stream_stream(
            f"/{service}/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        return [reply async for reply in info(iter(requests), timeout=10)]


def _files(reply: reflection_pb2.ServerReflectionResponse) -> list[descriptor_pb2.FileDescriptorProto]:
    assert reply.WhichOneof("message_response") == "file_descriptor_response", reply
    return [descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in reply.file_descriptor_response.file_descriptor_proto]


def _comment(file: descriptor_pb2.FileDescriptorProto, path: tuple[int, ...]) -> str:
    for location in file.source_code_info.location:
        if tuple(location.path) == path:
            return location.leading_comments.strip()
    return ""


@pytest.mark.parametrize("service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
async def test_reflection_lists_services_and_resolves_a_method_with_its_comment(app: Application,
                                                                                service: str) -> None:
    listed, method = await _reflect(
        app, service,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="costestimator.v1.EstimateService.StreamEstimates"),
    )
    names = {s.name for s in listed.list_services_response.service}
    assert SERVICES | {"grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME} <= names
    files = _files(method)
    assert files[0].name == "costestimator/v1/estimate_service.proto"
    # Every import travels with it, so a client can build the descriptors.
    assert {"costestimator/v1/common.proto", "google/api/field_behavior.proto", "google/rpc/status.proto",
            "google/protobuf/descriptor.proto"} <= {f.name for f in files}
    service_index = [s.name for s in files[0].service].index("EstimateService")
    method_index = [m.name for m in files[0].service[service_index].method].index("StreamEstimates")
    # FileDescriptorProto.service = 6, ServiceDescriptorProto.method = 2
    assert STREAM_ESTIMATES_DOC in _comment(files[0], (6, service_index, 2, method_index))


@pytest.mark.parametrize("service", [V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME])
async def test_reflection_answers_not_found_for_unknown_symbols_and_files(app: Application, service: str) -> None:
    replies = await _reflect(
        app, service,
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="costestimator.v1.EstimateService.NoSuchRpc"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="no/such.proto"),
    )
    assert [r.error_response.error_code for r in replies] == [grpc.StatusCode.NOT_FOUND.value[0]] * 3


def _locations(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(full name, source path) of every element buf's COMMENT_* rules cover."""
    def message(m: descriptor_pb2.DescriptorProto, name: str, path: tuple[int, ...]) -> Iterator[
            tuple[str, tuple[int, ...]]]:
        if m.options.map_entry:
            return
        yield name, path
        for i, f in enumerate(m.field):
            yield f"{name}.{f.name}", (*path, 2, i)
        for i, n in enumerate(m.nested_type):
            yield from message(n, f"{name}.{n.name}", (*path, 3, i))
        for i, e in enumerate(m.enum_type):
            yield from enum(e, f"{name}.{e.name}", (*path, 4, i))
        for i, o in enumerate(m.oneof_decl):
            if not any(f.proto3_optional for f in m.field if f.HasField("oneof_index") and f.oneof_index == i):
                yield f"{name}.{o.name}", (*path, 8, i)

    def enum(e: descriptor_pb2.EnumDescriptorProto, name: str, path: tuple[int, ...]) -> Iterator[
            tuple[str, tuple[int, ...]]]:
        yield name, path
        for i, v in enumerate(e.value):
            yield f"{name}.{v.name}", (*path, 2, i)

    for i, m in enumerate(file.message_type):
        yield from message(m, m.name, (4, i))
    for i, e in enumerate(file.enum_type):
        yield from enum(e, e.name, (5, i))
    for i, s in enumerate(file.service):
        yield s.name, (6, i)
        for j, rpc in enumerate(s.method):
            yield f"{s.name}.{rpc.name}", (6, i, 2, j)


async def test_every_element_reaches_clients_with_a_comment(app: Application) -> None:
    names = [f.name for f in OUR_FILES]
    replies = await _reflect(app, V1_SERVICE_NAME,
                             *(reflection_pb2.ServerReflectionRequest(file_by_filename=n) for n in names))
    served = {files[0].name: files[0] for files in map(_files, replies)}
    assert sorted(served) == sorted(names)
    elements = [(file.name, name, path) for file in served.values() for name, path in _locations(file)]
    assert len(elements) > 300  # the walk really visits the API (about 350 elements today)
    undocumented = [f"{f}: {name}" for f, name, path in elements if not _comment(served[f], path)]
    assert not undocumented


def test_served_comments_belong_to_the_compiled_protos() -> None:
    """The descriptor set beside the stubs describes exactly the compiled modules (only its JSON names and comments
    are extra): a stale set would attach comments to the wrong elements."""
    package, resource = DESCRIPTOR_SET
    data = (ROOT / "generated" / package.replace(".", "/") / resource).read_bytes()
    compiled = {f.name: f for f in OUR_FILES}
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    assert sorted(f.name for f in files) == sorted(compiled)
    assert set(source_info()) == set(compiled)
    for file in files:
        file.ClearField("source_code_info")
        for message in _all_messages(file.message_type):
            for field in message.field:
                field.ClearField("json_name")
        expected = descriptor_pb2.FileDescriptorProto()
        compiled[file.name].CopyToProto(expected)
        assert file == expected, file.name


def _all_messages(messages: object) -> Iterator[descriptor_pb2.DescriptorProto]:
    for m in messages:  # type: ignore[attr-defined]
        yield m
        yield from _all_messages(m.nested_type)


# ---- grpcurl, as an engineer uses it ----------------------------------------------------------------------------

async def _grpcurl_describe(app: Application, *symbols: str) -> str:
    cmd = [_grpcurl(), "-plaintext", f"127.0.0.1:{app.port}", "describe", *symbols]
    done = await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_grpcurl_describes_a_streaming_method_with_its_comment(app: Application) -> None:
    out = await _grpcurl_describe(app, "costestimator.v1.EstimateService.StreamEstimates")
    assert "costestimator.v1.EstimateService.StreamEstimates is a method:" in out
    assert f"// {STREAM_ESTIMATES_DOC}" in out
    assert ("rpc StreamEstimates ( .costestimator.v1.StreamEstimatesRequest ) "
            "returns ( stream .costestimator.v1.StreamEstimatesResponse );") in out


async def test_grpcurl_shows_field_comments_behaviors_and_enum_value_comments(app: Application) -> None:
    provider = await _grpcurl_describe(app, "costestimator.v1.Provider")
    assert "// Caller's id for this provider; unique within a request." in provider
    assert "string provider_id = 1 [(.google.api.field_behavior) = REQUIRED];" in provider
    status = await _grpcurl_describe(app, "costestimator.v1.EligibilityStatus")
    assert "// Created; the clearinghouse call (or its retries) is in progress. Not final." in status


async def test_grpcurl_describes_every_listed_service_including_reflection_v1(app: Application) -> None:
    everything = await _grpcurl_describe(app)  # no symbol: every listed service, each resolved by reflection
    for name in (*SERVICES, "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME):
        assert f"{name} is a service:" in everything
    assert "rpc ServerReflectionInfo ( stream .grpc.reflection.v1.ServerReflectionRequest )" in everything


# ---- field behaviors ----------------------------------------------------------------------------------------------

def _behaviors(field: descriptor.FieldDescriptor) -> set[int]:
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _our_messages(roots: list[descriptor.Descriptor]) -> list[descriptor.Descriptor]:
    """`roots` and every message of our package reachable from their fields."""
    seen: dict[str, descriptor.Descriptor] = {}
    todo = list(roots)
    while todo:
        message = todo.pop()
        if message.full_name in seen or not message.full_name.startswith("costestimator."):
            continue
        seen[message.full_name] = message
        todo.extend(f.message_type for f in message.fields if f.message_type is not None)
    return list(seen.values())


def _methods() -> list[descriptor.MethodDescriptor]:
    return [m for f in OUR_FILES for s in f.services_by_name.values() for m in s.methods]


def test_every_request_field_says_whether_it_is_required() -> None:
    """Every field a caller can send (request messages and what they contain) is REQUIRED or OPTIONAL, so a new
    field cannot skip saying it."""
    inputs = _our_messages([m.input_type for m in _methods()])
    assert {"costestimator.v1.Member", "costestimator.v1.Coverage", "costestimator.v1.Person"} <= {
        m.full_name for m in inputs}
    wrong = [f.full_name for m in inputs for f in m.fields
             if len(_behaviors(f) & {field_behavior_pb2.REQUIRED, field_behavior_pb2.OPTIONAL}) != 1]
    assert not wrong


async def _violated_fields(app: Application, method: descriptor.MethodDescriptor) -> set[str]:
    """Top-level fields named by the BadRequest of an empty request to `method`."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        path, metadata = f"/{method.containing_service.full_name}/{method.name}", (
            ("authorization", f"Bearer {app.dev_token}"),)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            if method.server_streaming:
                async for _ in channel.unary_stream(path)(b"", metadata=metadata, timeout=10):
                    pass
            else:
                await channel.unary_unary(path)(b"", metadata=metadata, timeout=10)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT, (method.full_name, err.value.details())
    details = dict(err.value.trailing_metadata() or ())["grpc-status-details-bin"]
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status_pb2.Status.FromString(details).details)
    return {re.split(r"[.\[]", v.field)[0] for v in bad.field_violations}


async def test_required_means_an_empty_request_is_refused_naming_exactly_the_required_fields(
        app: Application) -> None:
    """The REQUIRED annotations are what the server enforces: an empty request is INVALID_ARGUMENT and its
    violations name every REQUIRED top-level field and no OPTIONAL one."""
    checked = 0
    for method in _methods():
        required = {f.name for f in method.input_type.fields if field_behavior_pb2.REQUIRED in _behaviors(f)}
        required |= {o.name for o in method.input_type.oneofs if o.full_name in REQUIRED_ONEOFS}
        if required:
            assert await _violated_fields(app, method) == required, method.full_name
            checked += 1
    assert checked == 9  # GetBenefit, Estimate, StreamEstimates, Calculate, EstimateFromEligibility, Check, Submit, Get, Watch


def test_every_response_field_is_output_only() -> None:
    outputs = {m.output_type.full_name: m.output_type for m in _methods()}
    assert len(outputs) == 11  # one response message per RPC
    wrong = [f.full_name for m in outputs.values() for f in m.fields
             if field_behavior_pb2.OUTPUT_ONLY not in _behaviors(f)]
    assert not wrong


def test_field_behavior_module_comes_from_googleapis_common_protos_only() -> None:
    """The annotation's Python module is googleapis-common-protos': generating our own copy into generated/ would
    shadow it (or clash in the descriptor pool)."""
    assert not (ROOT / "generated" / "google").exists()
    assert "site-packages" in Path(field_behavior_pb2.__file__).parts
    assert descriptor_pool.Default().FindFileByName("google/api/field_behavior.proto") is not None


def test_vendored_googleapis_protos_are_the_ones_the_runtime_loads() -> None:
    """protoc and buf compile against third_party/googleapis; the server runs googleapis-common-protos' modules:
    the two must be the same files (unchanged copies, license headers included)."""
    vendored = ROOT / "third_party" / "googleapis"
    installed = Path(field_behavior_pb2.__file__).parents[2]  # site-packages/google/api/x.py -> site-packages
    files = sorted(vendored.rglob("*.proto"))
    assert vendored / "google" / "api" / "field_behavior.proto" in files
    for file in files:
        copy = file.read_text()
        assert copy.startswith("// Copyright"), file
        assert copy == (installed / file.relative_to(vendored)).read_text(), file


def test_every_proto_file_names_its_go_and_java_packages() -> None:
    for file in OUR_FILES:
        options = file.GetOptions()
        assert options.go_package.endswith(";costestimatorv1"), file.name
        assert options.java_package == "com.costestimator.v1" and options.java_multiple_files, file.name


# ---- .ci/buf-breaking on real repositories ------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout


def _breaking(repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    buf = ROOT / ".venv" / "bin" / "buf"
    if not buf.exists():
        pytest.skip("buf is not installed in .venv")
    return subprocess.run([str(repo / ".ci" / "buf-breaking")], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "BUF": str(buf), **env})


def _commit_the_contract(repo: Path) -> None:
    """Commit this checkout's contract (protos, third_party, buf.yaml, the script) into `repo`."""
    for name in ("protos", "third_party", ".ci"):
        shutil.copytree(ROOT / name, repo / name)
    shutil.copy(ROOT / "buf.yaml", repo / "buf.yaml")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "contract")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository whose one commit holds the contract."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _commit_the_contract(repo)
    return repo


def _change(repo: Path, old: str, new: str, message: str) -> None:
    proto = repo / "protos" / "costestimator" / "v1" / "estimate_service.proto"
    text = proto.read_text()
    assert old in text
    proto.write_text(text.replace(old, new))
    _git(repo, "commit", "-q", "-am", message)


_CALCULATE_END = "bool include_trace = 5 [(google.api.field_behavior) = OPTIONAL];\n}\n\n// The answer of Calculate."


def _add_a_field(repo: Path) -> None:
    new_field = "  // A new field.\n  string note = 6 [(google.api.field_behavior) = OPTIONAL];\n}"
    _change(repo, _CALCULATE_END, _CALCULATE_END.replace("\n}", "\n" + new_field, 1), "add a field")


def test_buf_breaking_passes_without_a_previous_commit_and_on_a_depth_one_clone(repo: Path, tmp_path: Path) -> None:
    alone = _breaking(repo)
    assert alone.returncode == 0 and "skipped" in alone.stdout, alone.stdout + alone.stderr
    _add_a_field(repo)
    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True)
    cloned = _breaking(shallow)
    assert cloned.returncode == 0 and "skipped" in cloned.stdout, cloned.stdout + cloned.stderr


def test_buf_breaking_passes_when_the_previous_commit_has_no_protos(tmp_path: Path) -> None:
    repo = tmp_path / "young"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README.md").write_text("before the contract\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "readme")
    _commit_the_contract(repo)
    done = _breaking(repo)
    assert done.returncode == 0 and "has no buf.yaml and protos" in done.stdout, done.stdout + done.stderr


def test_buf_breaking_accepts_a_new_field_and_refuses_a_renumbering(repo: Path) -> None:
    _add_a_field(repo)
    added = _breaking(repo)
    assert added.returncode == 0 and "no breaking change" in added.stdout, added.stdout + added.stderr
    _change(repo, "string note = 6", "string note = 7", "renumber a field")
    renumbered = _breaking(repo)
    assert renumbered.returncode == 1, renumbered.stdout + renumbered.stderr
    assert '"note"' in renumbered.stdout and "CalculateRequest" in renumbered.stdout
    _git(repo, "commit", "-q", "--amend", "-m", "renumber a field\n\nBuf-Breaking: allow")
    allowed = _breaking(repo)
    assert allowed.returncode == 0 and "allowed" in allowed.stdout, allowed.stdout + allowed.stderr
