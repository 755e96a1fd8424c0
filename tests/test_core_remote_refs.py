"""The pure core of remote parts: ref names, heartbeats read from names, part.json,
and the plan's `remote` key."""

from __future__ import annotations

import pytest

from hf_fanout import timefmt
from hf_fanout.core.plan import parse_plan_toml
from hf_fanout.core.records import Part
from hf_fanout.core.remote_refs import (
    check_remote_name,
    claim_ref,
    claimed_ref,
    current_claim,
    heartbeat_ref,
    hf_created,
    host_slug,
    last_sighting,
    parse_part_data,
    part_data,
)
from hf_fanout.errors import BadInput, InvalidPlan

AT = timefmt.parse_iso("2026-12-03T10:00:00Z") or 0.0


def test_the_newest_heartbeat_is_read_from_the_names():
    refs = {heartbeat_ref("b1", "api", "box-1", AT): "x",
            heartbeat_ref("b1", "api", "box-2", AT + 90): "x",
            heartbeat_ref("b1", "ui", "box-3", AT + 500): "x",  # another part
            "refs/hf/heartbeat/b1/api/box-4/not-a-time": "x"}
    seen = last_sighting("b1", "api", refs)
    assert seen is not None and seen.host == "box-2" and seen.at == AT + 90
    assert last_sighting("b1", "docs", refs) is None
    assert heartbeat_ref("b1", "api", "box-1", AT) == \
        "refs/hf/heartbeat/b1/api/box-1/20261203T100000Z"


def test_a_host_name_becomes_one_ref_component():
    assert host_slug("laptop.local") == "laptop.local"
    assert host_slug("my box/with:odd*chars") == "my-box-with-odd-chars"
    assert host_slug("...") == "unknown"


def test_only_the_parts_own_refs_are_hfs():
    assert hf_created("b1", "api", "refs/heads/hf/b1/api")
    assert hf_created("b1", "api", "refs/hf/task/b1/api")
    assert hf_created("b1", "api", "refs/hf/done/b1/api")
    assert hf_created("b1", "api", "refs/hf/heartbeat/b1/api/h/20261203T100000Z")
    assert not hf_created("b1", "api", "refs/heads/hf/b1/api-extra")
    assert not hf_created("b1", "api", "refs/heads/hf/b1/ui")
    assert not hf_created("b1", "api", "refs/heads/main")


def test_part_data_round_trips_and_bad_data_is_refused():
    part = Part(batch="b1", name="api", index=0, branch="hf/b1/api", worktree="/x",
                owns=["src/api/**"], task="the endpoint", estimate_minutes=5)
    base = "a" * 40
    data = parse_part_data(part_data(part, "b1", base, "add search"), "origin task")
    assert (data.batch, data.part, data.base, data.owns, data.task, data.batch_task) == \
        ("b1", "api", base, ["src/api/**"], "the endpoint", "add search")
    for bad in (b"nope", b"[]", b'{"schema": 2}',
                part_data(part, "b1", "HEAD", ""),
                part_data(part, "B 1", base, "")):
        with pytest.raises(BadInput):
            parse_part_data(bad, "origin task")


def test_remote_names_and_the_plans_remote_key():
    assert check_remote_name("origin") == "origin"
    for bad in ("-x", "a b", "../up", "x.lock", ""):
        with pytest.raises(InvalidPlan):
            check_remote_name(bad)
    plan = parse_plan_toml('batch = "b1"\n[[part]]\nname = "api"\nowns = ["a/**"]\n'
                           'remote = "origin"\n[[part]]\nname = "ui"\nowns = ["b/**"]\n',
                           "plan.toml")
    assert [p.remote for p in plan.parts] == ["origin", None]
    with pytest.raises(InvalidPlan, match="`remote` must be a remote's name"):
        parse_plan_toml('batch = "b1"\n[[part]]\nname = "api"\nowns = ["a/**"]\nremote = 1\n',
                        "plan.toml")
    with pytest.raises(InvalidPlan, match="bad remote name"):
        parse_plan_toml('batch = "b1"\n[[part]]\nname = "api"\nowns = ["a/**"]\n'
                        'remote = "no way"\n', "plan.toml")


def test_the_claim_is_the_claim_ref_and_its_name_ref_at_the_same_commit():
    refs = {claim_ref("b1", "api"): "c2",
            claimed_ref("b1", "api", "box-1", AT): "c1",  # an older claim's name: ignored
            claimed_ref("b1", "api", "box-2", AT + 60): "c2",
            claimed_ref("b1", "ui", "box-3", AT + 90): "c3"}
    claim = current_claim("b1", "api", refs)
    assert claim is not None
    assert (claim.commit, claim.host, claim.at) == ("c2", "box-2", AT + 60)
    assert current_claim("b1", "ui", refs) is None  # a name ref without its claim ref
    # a claim ref whose name ref went: held, by nobody known
    bare = current_claim("b1", "api", {claim_ref("b1", "api"): "c9"})
    assert bare is not None and bare.host is None and bare.at is None
    assert claimed_ref("b1", "api", "my box", AT) == \
        "refs/hf/claimed/b1/api/my-box/20261203T100000Z"
    assert hf_created("b1", "api", claim_ref("b1", "api"))
    assert hf_created("b1", "api", claimed_ref("b1", "api", "box", AT))
    assert not hf_created("b1", "api", claim_ref("b1", "ui"))
