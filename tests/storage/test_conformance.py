"""One behaviour suite for every storage backend (see conftest: sqlite always, mongo on demand)."""

from __future__ import annotations

import asyncio
import pathlib
import re
from typing import Any

import pytest

from fittracker.storage import (
    Collection,
    Database,
    DuplicateKeyError,
    InvalidQuery,
    StorageUnavailable,
    open_database,
)
from fittracker.storage.query import MAX_VALUE_DEPTH, check_filter, matches

from .conftest import OpenDb

PEOPLE: list[dict[str, Any]] = [
    {
        "_id": "ann",
        "name": "Ann",
        "age": 31,
        "score": 7.5,
        "active": True,
        "tags": ["run", "swim"],
        "city": {"name": "Oslo", "zip": "0150"},
        "sets": [{"reps": 5, "kg": 100}, {"reps": 8, "kg": 80}],
    },
    {
        "_id": "bob",
        "name": "Bob",
        "age": 25,
        "active": False,
        "tags": ["lift"],
        "city": {"name": "Bergen"},
        "sets": [{"reps": 10, "kg": 60}],
    },
    {"_id": "cy", "name": "cy", "age": 40, "nickname": None, "tags": [], "city": {"name": "Oslo"}},
    {"_id": "dee", "name": "Dee", "age": "unknown", "active": 1, "score": 9, "tags": ["run"]},
]
ALL = ["ann", "bob", "cy", "dee"]


async def people(db: Database) -> Collection:
    coll = db.collection("people")
    await coll.insert_many(PEOPLE)
    return coll


async def ids(coll: Collection, flt: dict[str, Any]) -> list[str]:
    return sorted(doc["_id"] for doc in await coll.find(flt))


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ALL),
    ({"name": "Ann"}, ["ann"]),
    ({"_id": "bob"}, ["bob"]),
    ({"_id": {"$in": ["bob", "cy", "zed"]}}, ["bob", "cy"]),
    ({"age": 31}, ["ann"]),
    ({"age": 31.0}, ["ann"]),
    ({"age": {"$eq": 25}}, ["bob"]),
    ({"age": {"$ne": 25}}, ["ann", "cy", "dee"]),
    ({"score": {"$ne": 9}}, ["ann", "bob", "cy"]),
    ({"age": {"$gt": 30}}, ["ann", "cy"]),
    ({"age": {"$gte": 31, "$lt": 40}}, ["ann"]),
    ({"age": {"$lte": 25}}, ["bob"]),
    ({"age": {"$gt": "a"}}, ["dee"]),
    ({"name": {"$lt": "a"}}, ["ann", "bob", "dee"]),
    ({"active": True}, ["ann"]),
    ({"active": 1}, ["dee"]),
    ({"active": False}, ["bob"]),
    ({"age": {"$in": [25, 40, "x"]}}, ["bob", "cy"]),
    ({"age": {"$in": []}}, []),
    ({"age": {"$nin": [25, 40]}}, ["ann", "dee"]),
    ({"score": {"$in": [None, 9]}}, ["bob", "cy", "dee"]),
    ({"score": {"$exists": True}}, ["ann", "dee"]),
    ({"score": {"$exists": False}}, ["bob", "cy"]),
    ({"nickname": {"$exists": True}}, ["cy"]),
    ({"nickname": None}, ALL),
    ({"score": None}, ["bob", "cy"]),
    ({"name": {"$regex": "^B"}}, ["bob"]),
    ({"name": {"$regex": "^[ab]", "$options": "i"}}, ["ann", "bob"]),
    ({"name": {"$not": {"$regex": "^[AB]"}}}, ["cy", "dee"]),
    ({"age": {"$not": {"$gt": 30}}}, ["bob", "dee"]),
    ({"$or": [{"age": 25}, {"name": "cy"}]}, ["bob", "cy"]),
    ({"$and": [{"tags": "run"}, {"age": {"$gt": 30}}]}, ["ann"]),
    ({"name": "Ann", "age": 25}, []),
    ({"city.name": "Oslo"}, ["ann", "cy"]),
    ({"city.zip": {"$exists": False}}, ["bob", "cy", "dee"]),
    ({"city": {"name": "Bergen"}}, ["bob"]),
    ({"tags": "run"}, ["ann", "dee"]),
    ({"tags": ["run", "swim"]}, ["ann"]),
    ({"tags": []}, ["cy"]),
    ({"tags": {"$in": ["lift", "swim"]}}, ["ann", "bob"]),
    ({"tags": {"$nin": ["run"]}}, ["bob", "cy"]),
    ({"tags": {"$ne": "run"}}, ["bob", "cy"]),
    ({"tags": {"$regex": "^s"}}, ["ann"]),
    ({"sets.reps": 8}, ["ann"]),
    ({"sets.kg": {"$gte": 70, "$lt": 90}}, ["ann"]),
    ({"sets.reps": {"$gt": 6}}, ["ann", "bob"]),
    ({"sets.reps": {"$exists": True}}, ["ann", "bob"]),
    ({"no.such.path": {"$exists": False}}, ALL),
    # Looks like injection, but it is plain Mongo syntax: a dict value IS an operator expression.
    ({"name": {"$gt": ""}}, ALL),
    ({"name": "x' OR '1'='1"}, []),
]


@pytest.mark.parametrize(("flt", "expected"), FILTERS, ids=[repr(f) for f, _ in FILTERS])
async def test_filter(db: Database, flt: dict[str, Any], expected: list[str]) -> None:
    coll = await people(db)
    assert await ids(coll, flt) == expected
    assert await coll.count(flt) == len(expected)


@pytest.mark.parametrize(("flt", "expected"), FILTERS, ids=[repr(f) for f, _ in FILTERS])
def test_reference_matcher_agrees(flt: dict[str, Any], expected: list[str]) -> None:
    """The pure-Python matcher (used for $pull conditions) follows the same table."""
    check_filter(flt)
    assert sorted(doc["_id"] for doc in PEOPLE if matches(doc, flt)) == expected


async def test_insert_and_find_one(db: Database) -> None:
    coll = db.collection("items")
    original = {"name": "bar", "nested": {"list": [1, 2.5, "x", None, True]}}
    stored = await coll.insert_one(original)
    assert "_id" not in original, "the caller's dict is not modified"
    assert re.fullmatch(r"[0-9a-f]{32}", stored["_id"])
    assert await coll.find_one({"_id": stored["_id"]}) == stored
    assert await coll.find_one({"name": "nope"}) is None
    explicit = await coll.insert_one({"_id": "mine", "name": "foo"})
    assert explicit == {"_id": "mine", "name": "foo"}
    assert await coll.count() == 2
    assert await coll.find_one({}, sort=[("name", -1)]) == explicit


async def test_sort_limit_skip(db: Database) -> None:
    coll = db.collection("rows")
    await coll.insert_many(
        [
            {"_id": "a", "group": 2, "value": 1, "meta": {"rank": 3}},
            {"_id": "b", "group": 1, "value": 5, "meta": {"rank": 1}},
            {"_id": "c", "group": 1, "value": 7},
            {"_id": "d", "group": 2, "value": 9, "meta": {"rank": 2}},
        ]
    )

    async def order(**kwargs: Any) -> list[str]:
        return [doc["_id"] for doc in await coll.find({}, **kwargs)]

    assert await order(sort=[("value", 1)]) == ["a", "b", "c", "d"]
    assert await order(sort=[("value", -1)]) == ["d", "c", "b", "a"]
    assert await order(sort=[("group", 1), ("value", -1)]) == ["c", "b", "d", "a"]
    # Missing values sort first ascending and last descending, as in MongoDB.
    assert await order(sort=[("meta.rank", 1)]) == ["c", "b", "d", "a"]
    assert await order(sort=[("meta.rank", -1)]) == ["a", "d", "b", "c"]
    assert await order(sort=[("value", 1)], skip=1, limit=2) == ["b", "c"]
    assert await order(sort=[("value", 1)], skip=3) == ["d"]
    assert await order(sort=[("value", 1)], limit=1) == ["a"]
    assert await coll.find({"group": 1}, sort=[("value", -1)], limit=1) == [await coll.find_one({"_id": "c"})]


async def test_set_unset_nested(db: Database) -> None:
    coll = db.collection("docs")
    await coll.insert_one({"_id": "u", "a": {"b": 1}, "x": 1})
    after = await coll.update_one(
        {"_id": "u"}, {"$set": {"a.c": 2, "new.deep": True}, "$unset": {"x": "", "gone": ""}}
    )
    assert after == {"_id": "u", "a": {"b": 1, "c": 2}, "new": {"deep": True}}
    assert await coll.find_one({"_id": "u"}) == after


async def test_inc(db: Database) -> None:
    coll = db.collection("docs")
    await coll.insert_one({"_id": "u", "n": 1, "f": 1.5})
    after = await coll.update_one({"_id": "u"}, {"$inc": {"n": -3, "f": 1, "fresh": 2}})
    assert after is not None
    assert (after["n"], after["f"], after["fresh"]) == (-2, 2.5, 2)
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "u"}, {"$set": {"n": "x"}, "$inc": {"f": 1, "n.y": 1}})
    await coll.update_one({"_id": "u"}, {"$set": {"s": "text"}})
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "u"}, {"$inc": {"s": 1}})


async def test_array_updates(db: Database) -> None:
    coll = db.collection("docs")
    await coll.insert_one({"_id": "u", "tags": ["a"], "sets": [{"reps": 5}, {"reps": 8}, {"reps": 3}]})
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"$push": {"tags": "b"}}, {"tags": ["a", "b"]}),
        ({"$push": {"tags": {"$each": ["c", "a"]}}}, {"tags": ["a", "b", "c", "a"]}),
        ({"$pull": {"tags": "a"}}, {"tags": ["b", "c"]}),
        ({"$addToSet": {"tags": "b"}}, {"tags": ["b", "c"]}),
        ({"$addToSet": {"tags": {"$each": ["c", "d", "d"]}}}, {"tags": ["b", "c", "d"]}),
        ({"$pull": {"tags": {"$in": ["b", "d"]}}}, {"tags": ["c"]}),
        ({"$pull": {"sets": {"reps": {"$lt": 6}}}}, {"sets": [{"reps": 8}]}),
        ({"$push": {"fresh": 1}}, {"fresh": [1]}),
    ]
    for update, expected in steps:
        after = await coll.update_one({"_id": "u"}, update)
        assert after is not None
        assert {key: after[key] for key in expected} == expected, update
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "u"}, {"$push": {"sets.0": 1}})
    await coll.update_one({"_id": "u"}, {"$set": {"scalar": 1}})
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "u"}, {"$push": {"scalar": 2}})


async def test_update_results(db: Database) -> None:
    coll = await people(db)
    assert await coll.update_one({"name": "nobody"}, {"$set": {"x": 1}}) is None
    assert await coll.count({"x": 1}) == 0
    assert await coll.update_many({"city.name": "Oslo"}, {"$set": {"north": True}}) == 2
    # Documents the update leaves unchanged are not counted as modified.
    assert await coll.update_many({}, {"$set": {"north": True}}) == 2
    assert await coll.update_many({"name": "nobody"}, {"$inc": {"n": 1}}) == 0
    assert await ids(coll, {"north": True}) == ALL
    # $setOnInsert alone never applies without an insert.
    assert await coll.update_many({}, {"$setOnInsert": {"x": 1}}) == 0


async def test_upsert(db: Database) -> None:
    coll = db.collection("users")
    update: dict[str, dict[str, Any]] = {
        "$set": {"name": "A"},
        "$setOnInsert": {"created": 1},
        "$inc": {"logins": 1},
    }
    first = await coll.update_one({"email": "a@x.org", "plan": {"$eq": "free"}}, update, upsert=True)
    assert first is not None
    assert isinstance(first["_id"], str)
    assert {k: v for k, v in first.items() if k != "_id"} == {
        "email": "a@x.org",
        "plan": "free",
        "name": "A",
        "created": 1,
        "logins": 1,
    }
    again: dict[str, dict[str, Any]] = {
        "$set": {"name": "B"},
        "$setOnInsert": {"created": 2},
        "$inc": {"logins": 1},
    }
    second = await coll.update_one({"email": "a@x.org"}, again, upsert=True)
    assert second == {**first, "name": "B", "logins": 2}
    assert await coll.count() == 1
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": 5}, {"$set": {"n": 1}}, upsert=True)
    fixed = await coll.update_one(
        {"$and": [{"_id": "fixed"}, {"n": {"$gt": 0}}]}, {"$set": {"n": 1}}, upsert=True
    )
    assert fixed == {"_id": "fixed", "n": 1}


async def test_unique_index(db: Database) -> None:
    coll = db.collection("users")
    await coll.create_index([("email", 1)], unique=True)
    await coll.create_index([("email", 1)], unique=True)  # idempotent
    await coll.create_index([("city.name", 1), ("age", -1)])
    await coll.insert_one({"_id": "a", "email": "a@x.org", "city": {"name": "Oslo"}, "age": 3})
    await coll.insert_one({"_id": "b", "email": "b@x.org"})
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"email": "a@x.org"})
    with pytest.raises(DuplicateKeyError):
        await coll.insert_one({"_id": "b", "email": "c@x.org"})
    with pytest.raises(DuplicateKeyError):
        await coll.update_one({"_id": "b"}, {"$set": {"email": "a@x.org"}})
    assert await coll.find_one({"_id": "b"}) == {"_id": "b", "email": "b@x.org"}
    assert await ids(coll, {"email": "a@x.org"}) == ["a"]
    assert await ids(coll, {"city.name": "Oslo", "age": {"$gte": 3}}) == ["a"]
    clash = db.collection("clash")
    await clash.insert_many([{"k": 1}, {"k": 1}])
    with pytest.raises(DuplicateKeyError):
        await clash.create_index([("k", 1)], unique=True)


async def test_delete(db: Database) -> None:
    coll = await people(db)
    assert await coll.delete_one({"tags": "run"}) == 1
    assert await coll.count({"tags": "run"}) == 1
    assert await coll.delete_one({"name": "nobody"}) == 0
    assert await coll.delete_many({"name": "nobody"}) == 0
    assert await coll.delete_many({"name": {"$in": ["Bob", "cy"]}}) == 2
    assert await coll.delete_many({}) == 1
    assert await coll.count() == 0


BAD_FILTERS: list[Any] = [
    {"$where": "sleep(100)"},
    {"$expr": {"$eq": ["$a", 1]}},
    {"name": {"$where": "1"}},
    {"name": {"$foo": 1}},
    {"name": {"$gt": "", "plain": 1}},
    {"name": {"$gt": [1]}},
    {"name": {"$gt": None}},
    {"name": {"$eq": {"$gt": 1}}},
    {"name": {"$in": "abc"}},
    {"name": {"$in": [{"$gt": 1}]}},
    {"name": {"$exists": "yes"}},
    {"name": {"$not": 5}},
    {"name": {"$not": {"x": 1}}},
    {"name": {"$regex": "("}},
    {"name": {"$regex": 5}},
    {"name": {"$options": "i"}},
    {"name": {"$regex": "a", "$options": "g"}},
    {"$and": {"a": 1}},
    {"$or": []},
    {"a.$b": 1},
    {"$": 1},
    {"": 1},
    {"a..b": 1},
    {"a b": 1},
    {"a'); DROP TABLE people; --": 1},
    {"a": {"b": {"$gt": 1}}},
    {"a": float("nan")},
    {"a": 2**70},
    "not a dict",
    [],
    "",
]


@pytest.mark.parametrize("flt", BAD_FILTERS, ids=[repr(f) for f in BAD_FILTERS])
async def test_invalid_filters(db: Database, flt: Any) -> None:
    coll = await people(db)
    for call in (coll.find, coll.count, coll.find_one, coll.delete_many, coll.delete_one):
        with pytest.raises(InvalidQuery):
            await call(flt)
    with pytest.raises(InvalidQuery):
        await coll.update_many(flt, {"$set": {"x": 1}})
    assert await coll.count() == len(PEOPLE)


BAD_UPDATES: list[Any] = [
    {},
    {"name": "replacement"},
    {"$rename": {"a": "b"}},
    {"$set": 5},
    {"$set": {"$x": 1}},
    {"$set": {"a.$": 1}},
    {"$set": {"a": {"$gt": 1}}},
    {"$set": {"a": {"b.c": 1}}},
    {"$set": {"_id": "other"}},
    {"$inc": {"a": "1"}},
    {"$inc": {"a": True}},
    {"$set": {"a": 1}, "$inc": {"a": 1}},
    {"$set": {"a": 1}, "$unset": {"a.b": ""}},
    {"$push": {"a": {"$each": 1}}},
    {"$push": {"a": {"$each": [1], "$slice": 2}}},
    {"$pull": {"a": {"$where": "1"}}},
    {"$set": {"a": object()}},
]


@pytest.mark.parametrize("update", BAD_UPDATES, ids=[repr(u) for u in BAD_UPDATES])
async def test_invalid_updates(db: Database, update: Any) -> None:
    coll = await people(db)
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "ann"}, update)
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "new"}, update, upsert=True)
    with pytest.raises(InvalidQuery):
        await coll.update_many({}, update)
    assert await coll.find_one({"_id": "ann"}) == PEOPLE[0]
    assert await coll.count() == len(PEOPLE)


BAD_DOCUMENTS: list[Any] = [
    {"$set": 1},
    {"a.b": 1},
    {"a": {"$gt": 1}},
    {"a": [{"$x": 1}]},
    {"_id": 5},
    {"_id": ""},
    {1: "non-string key"},
    {"a": (1, 2)},
    {"a": b"bytes"},
    ["not", "a", "dict"],
]


@pytest.mark.parametrize("doc", BAD_DOCUMENTS, ids=[repr(d) for d in BAD_DOCUMENTS])
async def test_invalid_documents(db: Database, doc: Any) -> None:
    coll = db.collection("docs")
    with pytest.raises(InvalidQuery):
        await coll.insert_one(doc)
    with pytest.raises(InvalidQuery):
        await coll.insert_many([{"fine": 1}, doc])
    assert await coll.count() == 0


async def test_invalid_options(db: Database) -> None:
    coll = await people(db)
    assert len(await coll.find(None)) == await coll.count(None) == len(PEOPLE)
    for write in (coll.delete_many, coll.delete_one):
        with pytest.raises(InvalidQuery):
            await write(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery):
        await coll.update_many(None, {"$set": {"x": 1}})  # type: ignore[arg-type]
    for sort in ([("name", 2)], [("name",)], [("$where", 1)], [("name", True)]):
        with pytest.raises(InvalidQuery):
            await coll.find({}, sort=sort)  # type: ignore[arg-type]
    for limit, skip in ((-1, 0), (0, -5)):
        with pytest.raises(InvalidQuery):
            await coll.find({}, limit=limit, skip=skip)
    with pytest.raises(InvalidQuery):
        await coll.create_index([])
    for name in ("bad name", "sqlite_master", "$cmd", "a.b"):
        with pytest.raises(InvalidQuery):
            db.collection(name)


# --- operator injection ------------------------------------------------------------------------
# A bare object in a filter IS an operator expression (see FILTERS), so plug-ins hand user input
# over as typed values (strings, numbers). Wherever a value stands for a literal ($eq, $ne, $in,
# $nin, inside an object or array literal, in a document), an operator-looking object is refused
# rather than obeyed; $where and every operator outside the documented subset are refused too.

INJECTIONS: dict[str, Any] = {
    "$eq of an operator object": {"name": {"$eq": {"$gt": ""}}},
    "$ne of an operator object": {"name": {"$ne": {"$ne": None}}},
    "$in holding an operator object": {"name": {"$in": [{"$gt": ""}]}},
    "$nin holding $where": {"name": {"$nin": [{"$where": "1"}]}},
    "object literal holding an operator": {"city": {"name": {"$gt": ""}}},
    "array literal holding an operator": {"tags": [{"$regex": ".*"}]},
    "$where at the top": {"$where": "this.name == 'Ann'"},
    "$where as a field operator": {"name": {"$where": "1"}},
    "$where inside $or": {"$or": [{"name": "Ann"}, {"$where": "1"}]},
    "$where inside $and": {"$and": [{"$where": "1"}]},
    "$where inside $not": {"name": {"$not": {"$where": "1"}}},
    "$expr": {"$expr": {"$gt": ["$age", 0]}},
    "$function": {"name": {"$function": {"body": "return true", "args": [], "lang": "js"}}},
    "$nor": {"$nor": [{"name": "Ann"}]},
    "$jsonSchema": {"$jsonSchema": {}},
    "$text": {"$text": {"$search": "Ann"}},
    "$elemMatch": {"sets": {"$elemMatch": {"reps": {"$gt": 0}}}},
    "$comment smuggled next to a field": {"name": "Ann", "$comment": "x"},
    "NUL in a field name": {"na\x00me": "Ann"},
    "$ in a nested field name": {"city.$name": "Oslo"},
}


@pytest.mark.parametrize("flt", INJECTIONS.values(), ids=INJECTIONS.keys())
async def test_injected_operators_are_refused(db: Database, flt: dict[str, Any]) -> None:
    coll = await people(db)
    for call in (coll.find, coll.find_one, coll.count, coll.delete_one, coll.delete_many):
        with pytest.raises(InvalidQuery):
            await call(flt)
    with pytest.raises(InvalidQuery):
        await coll.update_many(flt, {"$set": {"name": "pwned"}})
    with pytest.raises(InvalidQuery):
        await coll.update_one(flt, {"$set": {"name": "pwned"}}, upsert=True)
    assert sorted(await coll.find({}), key=lambda d: d["_id"]) == PEOPLE


async def test_operator_lookalike_strings_match_only_themselves(db: Database) -> None:
    coll = db.collection("lookalikes")
    await coll.insert_many(
        [
            {"_id": "gt", "v": "$gt"},
            {"_id": "json", "v": '{"$gt": ""}'},
            {"_id": "where", "v": "$where"},
            {"_id": "plain", "v": "x"},
        ]
    )
    assert await ids(coll, {"v": "$gt"}) == ["gt"]
    assert await ids(coll, {"v": {"$eq": '{"$gt": ""}'}}) == ["json"]
    assert await ids(coll, {"v": {"$in": ["$where", "$ne"]}}) == ["where"]
    assert await ids(coll, {"v": {"$ne": "$gt"}}) == ["json", "plain", "where"]


NESTED_TOO_DEEP: Any = {"a": 1}
for _ in range(1000):
    NESTED_TOO_DEEP = {"a": [NESTED_TOO_DEEP]}

BAD_KEYS: dict[str, Any] = {
    "NUL in a key": {"a\x00b": 1},
    "NUL in a nested key": {"a": {"b\x00": 1}},
    "$ key nested in a list": {"a": [{"$where": "1"}]},
    "$where key": {"$where": "1"},
    "nested 1000 deep": NESTED_TOO_DEEP,
}


@pytest.mark.parametrize("doc", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_unstorable_keys_and_depths_are_refused(db: Database, doc: dict[str, Any]) -> None:
    coll = db.collection("docs")
    await coll.insert_one({"_id": "x", "n": 1})
    with pytest.raises(InvalidQuery):
        await coll.insert_one(doc)
    with pytest.raises(InvalidQuery):
        await coll.insert_many([{"fine": 1}, doc])
    with pytest.raises(InvalidQuery):
        await coll.update_one({"_id": "x"}, {"$set": {"v": doc}})
    with pytest.raises(InvalidQuery):
        await coll.find({"v": {"$eq": doc}})
    assert await coll.find({}) == [{"_id": "x", "n": 1}]


async def test_nesting_up_to_the_limit_is_stored(db: Database) -> None:
    deep: Any = "leaf"
    for _ in range(MAX_VALUE_DEPTH - 1):  # the document itself is one more level
        deep = {"a": deep}
    coll = db.collection("docs")
    await coll.insert_one({"_id": "deep", "v": deep})
    assert await coll.find_one({"_id": "deep"}) == {"_id": "deep", "v": deep}


async def test_insert_many_is_all_or_nothing(db: Database) -> None:
    coll = db.collection("docs")
    await coll.create_index([("email", 1)], unique=True)
    await coll.insert_one({"_id": "a", "email": "a@x.org"})
    for batch in (
        [{"_id": "b"}, {"_id": "a"}, {"_id": "c"}],
        [{"_id": "b"}, {"_id": "b"}],
        [{"_id": "b", "email": "b@x.org"}, {"_id": "c", "email": "a@x.org"}],
    ):
        with pytest.raises(DuplicateKeyError):
            await coll.insert_many(batch)
        assert await ids(coll, {}) == ["a"]
    assert await coll.insert_many([]) == []
    assert len(await coll.insert_many([{"n": 1}, {"n": 2}])) == 2
    assert await coll.count() == 3


async def test_concurrent_increments(db: Database) -> None:
    coll = db.collection("counters")
    await coll.insert_one({"_id": "c", "n": 0})
    results = await asyncio.gather(*(coll.update_one({"_id": "c"}, {"$inc": {"n": 1}}) for _ in range(50)))
    assert await coll.find_one({"_id": "c"}) == {"_id": "c", "n": 50}
    # Every update saw its own state: the returned values are exactly 1..50.
    assert sorted(doc["n"] for doc in results if doc is not None) == list(range(1, 51))


async def test_persistence_across_reopen(open_db: OpenDb) -> None:
    first = open_db()
    coll = first.collection("keep")
    await coll.create_index([("email", 1)], unique=True)
    await coll.insert_one({"_id": "k", "email": "k@x.org", "list": [1, {"a": None}]})
    await first.close()
    with pytest.raises(StorageUnavailable):
        await first.ping()
    second = open_db()
    await second.ping()
    assert await second.collection("keep").find({}) == [
        {"_id": "k", "email": "k@x.org", "list": [1, {"a": None}]}
    ]
    with pytest.raises(DuplicateKeyError):
        await second.collection("keep").insert_one({"email": "k@x.org"})


async def test_open_database_arguments(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="unknown storage backend"):
        open_database("redis", "users", data_dir=tmp_path)
    with pytest.raises(ValueError, match="mongo_url"):
        open_database("mongo", "users", data_dir=tmp_path)
    with pytest.raises(InvalidQuery):
        open_database("sqlite", "../escape", data_dir=tmp_path)
    db = open_database("sqlite", "users", data_dir=tmp_path / "nested")
    assert not (tmp_path / "nested").exists(), "nothing is touched before first use"
    await db.ping()
    assert (tmp_path / "nested" / "users.db").exists()
    await db.close()


async def test_mongo_without_server_is_unavailable(tmp_path: pathlib.Path) -> None:
    url = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    db = open_database("mongo", "users", data_dir=tmp_path, mongo_url=url)
    try:
        with pytest.raises(StorageUnavailable):
            await db.ping()
        with pytest.raises(StorageUnavailable):
            await db.collection("users").find_one({"_id": "x"})
        with pytest.raises(InvalidQuery):  # validated before anything is sent
            await db.collection("users").find({"$where": "1"})
    finally:
        await db.close()
