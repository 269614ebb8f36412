"""Property tests (hypothesis) for JSON Patch and the versioning invariants.

Each test function uses one app and one database; every example works on its own resource id.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jsonpatch
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATCH = {"Content-Type": "application/json-patch+json"}
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- random but valid Patient content -------------------------------------------------------------

_word = st.text(alphabet="陈林黄郑王李张吴刘蔡莆田秀屿荔城涵江仙游abcdefxyzABC0123-", min_size=1, max_size=6)
_name = st.fixed_dictionaries(
    {}, optional={"family": _word, "given": st.lists(_word, min_size=1, max_size=3), "text": _word}
).filter(bool)
_telecom = st.fixed_dictionaries(
    {"system": st.sampled_from(["phone", "email", "sms"]), "value": _word},
    optional={"use": st.sampled_from(["home", "work", "mobile"]), "rank": st.integers(1, 9)},
)
_address = st.fixed_dictionaries(
    {},
    optional={
        "city": st.just("莆田市"),
        "district": st.sampled_from(["荔城区", "城厢区", "涵江区", "秀屿区", "仙游县"]),
        "line": st.lists(_word, min_size=1, max_size=2),
        "postalCode": st.from_regex(r"3511\d\d", fullmatch=True),
    },
).filter(bool)
_patient = st.fixed_dictionaries(
    {},
    optional={
        "active": st.booleans(),
        "gender": st.sampled_from(["male", "female", "other", "unknown"]),
        "birthDate": st.dates(min_value=__import__("datetime").date(1900, 1, 1)).map(lambda d: d.isoformat()),
        "name": st.lists(_name, min_size=1, max_size=3),
        "telecom": st.lists(_telecom, min_size=1, max_size=3),
        "address": st.lists(_address, min_size=1, max_size=2),
        "multipleBirthInteger": st.integers(1, 5),
        "maritalStatus": st.fixed_dictionaries({"text": _word}),
    },
)


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


@EXAMPLES
@given(source=_patient, target=_patient)
async def test_generated_patch_yields_the_target(
    client: httpx.AsyncClient, source: dict[str, Any], target: dict[str, Any]
) -> None:
    res_id = uuid.uuid4().hex
    put = await client.put(f"/Patient/{res_id}", json={**source, "resourceType": "Patient", "id": res_id})
    assert put.status_code == 201, put.text
    stored = put.json()
    wanted = {**target, "resourceType": "Patient", "id": res_id, "meta": stored["meta"]}
    operations = jsonpatch.make_patch(stored, wanted).patch
    response = await client.patch(f"/Patient/{res_id}", content=orjson.dumps(operations), headers=PATCH)
    assert response.status_code == 200, (operations, response.text)
    result = response.json()
    assert _without_meta(result) == _without_meta(wanted)
    assert result["meta"]["versionId"] == "2"
    assert (await client.get(f"/Patient/{res_id}")).content == response.content


# -- arbitrary (mostly broken) patch documents ----------------------------------------------------

_segment = st.sampled_from(
    [
        *("name", "0", "1", "-", "given", "family", "active", "gender", "telecom", "meta", "versionId"),
        *("id", "resourceType", "birthDate", "x", "~0", "~1", "~2", "", "01", "99"),
    ]
)
_pointer = st.lists(_segment, max_size=4).map(lambda parts: "".join("/" + p for p in parts))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, allow_infinity=False) | _word,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_segment, inner, max_size=3),
    max_leaves=6,
)
_operation = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "delete", ""]) | _json,
        "path": _pointer | _json | _word,
        "from": _pointer | _json,
        "value": _json,
    },
)
_document = st.one_of(
    st.lists(_operation, max_size=4).map(orjson.dumps),
    _json.map(orjson.dumps),
    st.binary(max_size=30),
)


@EXAMPLES
@given(document=_document)
async def test_arbitrary_patches_never_fail_the_server(client: httpx.AsyncClient, document: bytes) -> None:
    res_id = "fuzz"
    current = await client.get(f"/Patient/{res_id}")
    if current.status_code == 404:
        body = {"resourceType": "Patient", "id": res_id, "name": [{"family": "陈", "given": ["a", "b"]}]}
        current = await client.put(f"/Patient/{res_id}", json=body)
    before = current.headers["etag"]
    response = await client.patch(f"/Patient/{res_id}", content=document, headers=PATCH)
    assert response.status_code in (200, 400, 409, 412, 422), (document, response.text)
    after = await client.get(f"/Patient/{res_id}")
    if response.status_code == 200:
        assert after.content == response.content
        assert int(after.headers["etag"][3:-1]) == int(before[3:-1]) + 1
    else:
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"] and all(i["severity"] == "error" for i in outcome["issue"])
        assert after.headers["etag"] == before  # nothing was written


# -- versioning invariants ------------------------------------------------------------------------

_action = st.one_of(
    st.tuples(st.just("update"), st.sampled_from(["male", "female", "other", "unknown"])),
    st.tuples(st.just("patch"), st.booleans()),
    st.tuples(st.just("delete"), st.none()),
    st.tuples(st.just("read"), st.none()),
)


@EXAMPLES
@given(actions=st.lists(_action, min_size=1, max_size=12))
async def test_versioning_invariants(client: httpx.AsyncClient, actions: list[tuple[str, Any]]) -> None:
    res_id = uuid.uuid4().hex
    url = f"/Patient/{res_id}"
    written: list[bytes | None] = []  # body of each version; None for a deletion
    exists = deleted = False

    for kind, arg in actions:
        if kind == "update":
            response = await client.put(url, json={"resourceType": "Patient", "id": res_id, "gender": arg})
            if not exists:
                assert response.status_code == 201
            else:  # an update of a deleted resource brings it back, as a new version
                assert response.status_code in ((200, 201) if deleted else (200,))
            exists, deleted = True, False
            written.append(response.content)
        elif kind == "patch":
            ops = [{"op": "add", "path": "/active", "value": arg}]
            response = await client.patch(url, content=orjson.dumps(ops), headers=PATCH)
            if not exists:
                assert response.status_code == 404
                continue
            if deleted:
                assert response.status_code == 410
                continue
            assert response.status_code == 200
            assert response.json()["active"] is arg
            written.append(response.content)
        elif kind == "delete":
            response = await client.delete(url)
            assert response.status_code == 204
            if exists and not deleted:
                written.append(None)
                assert response.headers["etag"] == f'W/"{len(written)}"'
            deleted = deleted or exists
            continue
        else:
            response = await client.get(url)
            expected = 404 if not exists else 410 if deleted else 200
            assert response.status_code == expected
            if expected == 200:
                assert response.content == next(b for b in reversed(written) if b is not None)
            continue
        # a write: versions strictly increase by one
        assert response.headers["etag"] == f'W/"{len(written)}"'
        assert response.json()["meta"]["versionId"] == str(len(written))

    if not exists:
        assert (await client.get(f"{url}/_history")).status_code == 404
        return
    history = (await client.get(f"{url}/_history", params={"_count": "100"})).json()
    assert history["total"] == len(written)
    assert [e["response"]["etag"] for e in history["entry"]] == [
        f'W/"{n}"' for n in range(len(written), 0, -1)
    ]
    for number, body in enumerate(written, start=1):
        vread = await client.get(f"{url}/_history/{number}")
        if body is None:
            assert vread.status_code == 410
        else:
            assert vread.status_code == 200
            assert vread.content == body
    final = await client.get(url)
    assert final.status_code == (410 if deleted else 200)
