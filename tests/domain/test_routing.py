"""The routing table of §4 as a graph: no cycle, every handler reachable, bounded paths."""

from __future__ import annotations

import inspect

import pytest

from server.domain.costshare import handlers, routing
from server.domain.costshare.chain import MAX_STEPS
from server.domain.costshare.handlers import HANDLERS
from server.domain.costshare.routing import ROUTES, Edge, HandlerId


# Rows that only apply to one value of ded-first (§4: "H9 -> H7 only when ded-first is Y, H8 -> H9 only when N").
ONLY_DED_FIRST = {routing.H8_DED_FIRST, routing.H9_DED_FIRST}
ONLY_COPAY_FIRST = {routing.H8_COPAY_FIRST, routing.H9_COPAY_FIRST, routing.H5_COPAY_FIRST}


def _successors(ded_first: bool | None = None) -> dict[HandlerId, set[HandlerId]]:
    excluded = set() if ded_first is None else (ONLY_COPAY_FIRST if ded_first else ONLY_DED_FIRST)
    graph: dict[HandlerId, set[HandlerId]] = {h: set() for h in HandlerId}
    for edge in ROUTES:
        if edge.target is not None and edge not in excluded:
            graph[edge.source].add(edge.target)
    return graph


def test_every_edge_is_listed_once_and_every_handler_has_one() -> None:
    declared = {v for v in vars(routing).values() if isinstance(v, Edge)}
    assert declared == set(ROUTES) and len(ROUTES) == len(set(ROUTES))
    assert {e.source for e in ROUTES} == set(HandlerId) == set(HANDLERS)


@pytest.mark.parametrize("ded_first", [True, False])
def test_graph_has_no_cycle_and_longest_path_fits_max_steps(ded_first: bool) -> None:
    graph = _successors(ded_first)

    def longest(node: HandlerId, seen: tuple[HandlerId, ...]) -> int:
        assert node not in seen, f"cycle through {seen + (node,)}"
        return 1 + max((longest(n, seen + (node,)) for n in graph[node]), default=0)

    # Y: H1 H2 H3 H5 H9 H7 H8 H10|H4; N: H1 H2 H3 H5 H7 H8 H9 H10
    assert longest(HandlerId.H1, ()) == 8
    assert longest(HandlerId.H1, ()) < MAX_STEPS


def test_every_handler_reachable_from_h1() -> None:
    graph, seen, todo = _successors(), {HandlerId.H1}, [HandlerId.H1]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(HandlerId)


def test_only_h2_runs_a_subchain_and_it_starts_at_h3() -> None:
    subchains = [e for e in ROUTES if e.subchain]
    assert {e.source for e in subchains} == {HandlerId.H2}
    assert {e.target for e in subchains} == {HandlerId.H3}


def test_handlers_only_return_their_own_rows() -> None:
    """Read each handler's source: every routing row it names must start at that handler."""
    by_name = {e: name for name, e in vars(routing).items() if isinstance(e, Edge)}
    for handler_id, fn in [*HANDLERS.items(), (HandlerId.H2, handlers.h2_after_subchain)]:
        source = inspect.getsource(fn)
        named = [e for e, name in by_name.items() if f"r.{name}" in source]
        assert named, fn.__name__
        assert all(e.source is handler_id for e in named), fn.__name__


def test_handler_ids_use_book_names() -> None:
    assert HandlerId.H10.value == "H10 DeductibleCoInsurance" and HandlerId.H10.code == "H10"


def test_without_the_ded_first_guard_the_rows_would_cycle() -> None:
    """Why the loop has a step guard: H9 -> H7 -> H8 -> H9 exists as rows; only ded-first keeps it apart."""
    graph = _successors(None)
    assert HandlerId.H7 in graph[HandlerId.H9] and HandlerId.H9 in graph[HandlerId.H8]


def test_a_cycle_is_stopped_by_the_step_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    from server.domain.costshare import chain
    from server.domain.errors import ChainDefect
    from tests.domain.builders import D, scenario

    loop = Edge(HandlerId.H3, "test-only loop", HandlerId.H3)
    monkeypatch.setattr(chain, "HANDLERS", {**HANDLERS, HandlerId.H3: lambda ctx: loop})
    with pytest.raises(ChainDefect, match=str(MAX_STEPS)):
        chain.calculate(*scenario(), D("1.00"))
