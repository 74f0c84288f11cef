"""The server lift: the tools of the servers that the best hits come from rise together (pure)."""

from __future__ import annotations

from gateway.services.ranking import Ranked, lift_servers, server_strength


def ranked(*pairs: tuple[str, float]) -> list[Ranked]:
    return [Ranked(tool_id=t, score=s, semantic=s) for t, s in pairs]


def test_a_lookalike_from_another_server_falls_below_the_best_servers_other_tools() -> None:
    hits = ranked(("git:log", 1.0), ("notes:log_entry", 0.8), ("notes:read", 0.75), ("git:show", 0.7),
                  ("git:diff", 0.5))
    strength = server_strength(hits, seeds=1)
    assert strength == {"git": 1.0}
    order = [r.tool_id for r in lift_servers(hits, strength, 0.5)]
    assert order == ["git:log", "git:show", "git:diff", "notes:log_entry", "notes:read"]


def test_servers_are_lifted_by_their_best_seed_and_the_best_score_stays_one() -> None:
    hits = ranked(("a:x", 1.0), ("b:y", 0.9), ("a:z", 0.2), ("b:w", 0.3), ("c:v", 0.6))
    strength = server_strength(hits, seeds=2)
    assert strength == {"a": 1.0, "b": 0.9}
    lifted = lift_servers(hits, strength, 0.5)
    assert lifted[0].tool_id == "a:x" and lifted[0].score == 1.0
    assert [r.tool_id for r in lifted] == ["a:x", "b:y", "b:w", "a:z", "c:v"]
    assert lift_servers(hits, {}, 0.5)[0].score == 1.0 and lift_servers([], strength, 0.5) == []
