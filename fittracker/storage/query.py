"""Backend-independent rules for filters, updates and documents, plus a pure-Python updater.

Both backends call the ``check_*`` functions before touching storage, so a filter that smuggles
in ``$where`` (or any operator outside the subset documented in :mod:`.base`) is rejected with
the same :class:`InvalidQuery` message whichever backend runs. The SQLite backend also uses
:func:`apply_update` and :func:`upsert_seed`, because it updates documents read-modify-write.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

import orjson

from fittracker.ids import random_hex

from .base import Document, Filter, InvalidQuery, Update

# Field path segments are inlined into SQL by the SQLite backend, so they must be boring.
SEGMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_PATH_DEPTH: Final = 6
# Objects and arrays nested in a value, at most: MongoDB stops at 100, and a deeper value
# would exhaust Python's recursion here (a RecursionError instead of InvalidQuery).
MAX_VALUE_DEPTH: Final = 32
RANGE_OPS: Final = frozenset({"$gt", "$gte", "$lt", "$lte"})
FIELD_OPS: Final = (
    frozenset({"$eq", "$ne", "$in", "$nin", "$exists", "$regex", "$options", "$not"}) | RANGE_OPS
)
UPDATE_OPS: Final = frozenset({"$set", "$unset", "$inc", "$push", "$pull", "$addToSet", "$setOnInsert"})
REGEX_OPTIONS: Final = frozenset("imsx")
INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# A marker for "no value at this path"; distinct from JSON null.
_MISSING: Final = object()


def new_id() -> str:
    """A fresh document id (uuid4 hex), the same on every backend."""
    return random_hex()


def check_name(kind: str, name: object) -> str:
    """Database and collection names become SQL identifiers and file names: keep them plain."""
    if not isinstance(name, str) or not SEGMENT.fullmatch(name) or name.lower().startswith("sqlite_"):
        raise InvalidQuery(f"invalid {kind} name {name!r}: use letters, digits and '_' (max 64)")
    return name


# Valid paths seen so far (a program uses a few hundred): every query and update checks its paths.
_VALID_PATHS: dict[str, tuple[str, ...]] = {}


def split_path(path: object) -> list[str]:
    """Validate a dotted field path and return its segments."""
    if not isinstance(path, str):
        raise InvalidQuery(f"field path must be a string, got {type(path).__name__}")
    known = _VALID_PATHS.get(path)
    if known is not None:
        return list(known)
    segments = path.split(".")
    if len(segments) > MAX_PATH_DEPTH or not all(SEGMENT.fullmatch(s) for s in segments):
        raise InvalidQuery(
            f"invalid field path {path!r}: segments must match [A-Za-z_][A-Za-z0-9_]* "
            f"(no '$', at most {MAX_PATH_DEPTH} levels)"
        )
    if len(_VALID_PATHS) < 10_000:  # bounded: paths built from data would otherwise grow it
        _VALID_PATHS[path] = tuple(segments)
    return segments


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_operator_dict(value: object) -> bool:
    """True for ``{"$op": ...}``; such a value is an operator expression, never a literal."""
    return isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value)


def check_value(value: object, where: str, max_depth: int = MAX_VALUE_DEPTH, depth: int = 0) -> None:
    """Accept JSON-native values only, objects and arrays nested at most ``max_depth`` deep;
    object keys may not start with '$' nor hold '.' or NUL (MongoDB cannot store a NUL in a key)."""
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidQuery(f"{where}: integer {value} does not fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidQuery(f"{where}: {value} is not a finite number")
    elif isinstance(value, list | dict) and depth >= max_depth:
        raise InvalidQuery(f"{where}: nested more than {max_depth} levels deep")
    elif isinstance(value, list):
        for item in value:
            check_value(item, where, max_depth, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key or key.startswith("$") or "." in key or "\x00" in key:
                raise InvalidQuery(
                    f"{where}: invalid key {key!r} (keys may not start with '$' nor hold '.' or NUL)"
                )
            check_value(item, where, max_depth, depth + 1)
    else:
        raise InvalidQuery(f"{where}: unsupported value type {type(value).__name__}")


def check_document(doc: object) -> None:
    if not isinstance(doc, dict):
        raise InvalidQuery("a document must be an object")
    check_value(doc, "document")
    if "_id" in doc and (not isinstance(doc["_id"], str) or not doc["_id"]):
        raise InvalidQuery("_id must be a non-empty string")


def check_keys(kind: str, keys: object, *, allow_empty: bool = True) -> list[tuple[list[str], int]]:
    """Validate sort or index keys ``[(path, 1 | -1), ...]``; returns (segments, direction) pairs."""
    if keys is None or (allow_empty and isinstance(keys, list | tuple) and not keys):
        return []
    if not isinstance(keys, list | tuple) or not keys:
        raise InvalidQuery(f"{kind} keys must be a non-empty list of (field, 1 | -1) pairs")
    out: list[tuple[list[str], int]] = []
    for key in keys:
        if (
            not isinstance(key, list | tuple)
            or len(key) != 2
            or key[1] not in (1, -1)
            or isinstance(key[1], bool)
        ):
            raise InvalidQuery(f"{kind} key {key!r} must be a (field, 1 | -1) pair")
        out.append((split_path(key[0]), int(key[1])))
    return out


def check_paging(limit: object, skip: object) -> None:
    for label, value in (("limit", limit), ("skip", skip)):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT64_MAX:
            raise InvalidQuery(f"{label} must be a non-negative integer")


def regex_pattern(pattern: str, options: str) -> str:
    """Mongo's ``$options`` as Python inline flags, so both backends read the same pattern."""
    return f"(?{''.join(sorted(set(options)))}){pattern}" if options else pattern


def check_filter(flt: object) -> None:
    """Raise InvalidQuery unless ``flt`` stays inside the supported subset."""
    if not isinstance(flt, Mapping):
        raise InvalidQuery("a filter must be an object")
    for key, cond in flt.items():
        if key in ("$and", "$or"):
            if not isinstance(cond, list) or not cond:
                raise InvalidQuery(f"{key} takes a non-empty list of filters")
            for sub in cond:
                check_filter(sub)
        elif isinstance(key, str) and key.startswith("$"):
            raise InvalidQuery(f"unsupported top-level operator {key!r}")
        else:
            split_path(key)
            check_condition(key, cond)


def check_condition(path: str, cond: object) -> None:
    """Validate the right-hand side of ``{path: cond}``: a literal or an operator dict."""
    if not is_operator_dict(cond):
        check_value(cond, f"value for {path!r}")
        return
    assert isinstance(cond, Mapping)
    for op, arg in cond.items():
        if not isinstance(op, str) or not op.startswith("$"):
            raise InvalidQuery(f"{path!r}: cannot mix operators and plain keys ({op!r})")
        if op not in FIELD_OPS:
            raise InvalidQuery(f"unsupported operator {op!r} on {path!r}")
        where = f"{op} on {path!r}"
        if op in ("$eq", "$ne"):
            check_value(arg, where)
        elif op in RANGE_OPS:
            if not (is_number(arg) or isinstance(arg, str)):
                raise InvalidQuery(f"{where} takes a number or a string")
            check_value(arg, where)
        elif op in ("$in", "$nin"):
            if not isinstance(arg, list):
                raise InvalidQuery(f"{where} takes a list")
            check_value(arg, where)
        elif op == "$exists":
            if not isinstance(arg, bool):
                raise InvalidQuery(f"{where} takes true or false")
        elif op == "$regex":
            options = cond.get("$options", "")
            if not isinstance(arg, str) or not isinstance(options, str):
                raise InvalidQuery(f"{where} takes a string pattern")
            try:
                re.compile(regex_pattern(arg, options))
            except re.error as exc:
                raise InvalidQuery(f"{where}: invalid pattern ({exc})") from None
        elif op == "$options":
            if "$regex" not in cond or not isinstance(arg, str) or not set(arg) <= REGEX_OPTIONS:
                raise InvalidQuery(f"{where}: only with $regex, letters from 'imsx'")
        elif op == "$not":
            if not is_operator_dict(arg):
                raise InvalidQuery(f"{where} takes an operator object such as {{'$gt': 1}}")
            check_condition(path, arg)


# Update shapes (operators and their paths) already checked: the paths part of the check is
# quadratic in the number of paths, and a program sends the same few shapes over and over.
_VALID_UPDATE_SHAPES: set[tuple[tuple[str, tuple[str, ...]], ...]] = set()


def check_update(update: object) -> None:
    """Raise InvalidQuery unless ``update`` is a non-empty set of supported update operators."""
    if not isinstance(update, Mapping) or not update:
        raise InvalidQuery("an update must be a non-empty object of update operators")
    for op, fields in update.items():
        if op not in UPDATE_OPS:
            hint = "" if str(op).startswith("$") else " (replacement documents are not supported)"
            raise InvalidQuery(f"unsupported update operator {op!r}{hint}")
        if not isinstance(fields, Mapping):
            raise InvalidQuery(f"{op} takes an object of field paths")
    shape = tuple((op, tuple(fields)) for op, fields in update.items())
    if shape not in _VALID_UPDATE_SHAPES:
        _check_update_paths(update)
        if len(_VALID_UPDATE_SHAPES) < 10_000:  # bounded, like the paths memo
            _VALID_UPDATE_SHAPES.add(shape)
    for op, fields in update.items():
        for path, arg in fields.items():
            _check_update_arg(op, path, arg)


def _check_update_paths(update: Mapping[str, Mapping[str, object]]) -> None:
    seen: list[tuple[str, ...]] = []
    for op, fields in update.items():
        for path in fields:
            segments = tuple(split_path(path))
            if segments[0] == "_id" and op != "$setOnInsert":
                raise InvalidQuery(f"{op} cannot modify the immutable field '_id'")
            # Mongo refuses two operators touching the same path or a path and its parent.
            for other in seen:
                shortest = min(len(other), len(segments))
                if other[:shortest] == segments[:shortest]:
                    raise InvalidQuery(f"conflicting update paths {'.'.join(other)!r} and {path!r}")
            seen.append(segments)


def _check_update_arg(op: str, path: str, arg: object) -> None:
    where = f"{op} on {path!r}"
    if op == "$inc":
        if not is_number(arg):
            raise InvalidQuery(f"{where} takes a number")
        check_value(arg, where)
    elif op in ("$push", "$addToSet") and is_operator_dict(arg):
        assert isinstance(arg, Mapping)
        if set(arg) != {"$each"} or not isinstance(arg["$each"], list):
            raise InvalidQuery(f"{where}: the only modifier supported is {{'$each': [...]}}")
        check_value(arg["$each"], where)
    elif op == "$pull" and is_operator_dict(arg):
        check_condition(path, arg)
    elif op == "$pull" and isinstance(arg, Mapping):
        check_filter(arg)  # a plain object in $pull is a query on array elements
    else:
        check_value(arg, where)


# --- pure-Python matching (used for $pull conditions) ------------------------------------------


def _candidates(value: Any, segments: list[str]) -> list[Any]:
    """Every value a path reaches, walking into arrays the way Mongo does."""
    if not segments:
        return [value, *value] if isinstance(value, list) else [value]
    if isinstance(value, dict):
        return _candidates(value[segments[0]], segments[1:]) if segments[0] in value else [_MISSING]
    if isinstance(value, list):
        found = [c for item in value if isinstance(item, dict) for c in _candidates(item, segments)]
        return found or [_MISSING]
    return [_MISSING]


def values_equal(value: Any, expected: Any) -> bool:
    """Mongo equality: numbers compare by value, other types only with their own type."""
    if expected is None:
        return value is None or value is _MISSING
    if is_number(expected):
        return is_number(value) and bool(value == expected)
    return type(value) is type(expected) and bool(value == expected)


def _compare(op: str, value: Any, bound: Any) -> bool:
    same_kind = is_number(value) if is_number(bound) else isinstance(value, str)
    if not same_kind:
        return False
    if op == "$gt":
        return bool(value > bound)
    if op == "$gte":
        return bool(value >= bound)
    return bool(value < bound) if op == "$lt" else bool(value <= bound)


def _match_ops(cands: list[Any], ops: Mapping[str, Any]) -> bool:
    for op, arg in ops.items():
        if op == "$eq":
            ok = any(values_equal(c, arg) for c in cands)
        elif op == "$ne":
            ok = not any(values_equal(c, arg) for c in cands)
        elif op in RANGE_OPS:
            ok = any(_compare(op, c, arg) for c in cands)
        elif op in ("$in", "$nin"):
            ok = any(values_equal(c, a) for c in cands for a in arg) == (op == "$in")
        elif op == "$exists":
            ok = any(c is not _MISSING for c in cands) == arg
        elif op == "$regex":
            rx = re.compile(regex_pattern(arg, ops.get("$options", "")))
            ok = any(isinstance(c, str) and rx.search(c) is not None for c in cands)
        elif op == "$not":
            ok = not _match_ops(cands, arg)
        else:  # $options is read together with $regex
            continue
        if not ok:
            return False
    return True


def matches(doc: Mapping[str, Any], flt: Filter) -> bool:
    """Whether ``doc`` matches a (validated) filter, with the same semantics as the backends."""
    for key, cond in flt.items():
        if key == "$and":
            ok = all(matches(doc, sub) for sub in cond)
        elif key == "$or":
            ok = any(matches(doc, sub) for sub in cond)
        else:
            ops = cond if is_operator_dict(cond) else {"$eq": cond}
            ok = _match_ops(_candidates(doc, key.split(".")), ops)
        if not ok:
            return False
    return True


def _pull_matches(element: Any, cond: Any) -> bool:
    if is_operator_dict(cond):
        return _match_ops([element, *element] if isinstance(element, list) else [element], cond)
    if isinstance(cond, Mapping):
        return isinstance(element, dict) and matches(element, cond)
    return values_equal(element, cond)


# --- pure-Python updates -----------------------------------------------------------------------


def _parent(doc: Document, segments: list[str], path: str, *, create: bool) -> dict[str, Any] | None:
    node = doc
    for seg in segments[:-1]:
        child = node.get(seg, _MISSING)
        if child is _MISSING and create:
            child = node[seg] = {}
        if not isinstance(child, dict):
            if not create or child is _MISSING:
                return None
            raise InvalidQuery(f"cannot update {path!r}: {seg!r} is not an object")
        node = child
    return node


def _clone(value: Any) -> Any:
    """A deep copy of a JSON-native value (what documents hold; ``check_value`` sees to it).

    Through orjson: several times faster than ``copy.deepcopy``, and every write copies the
    document it changes.
    """
    if isinstance(value, dict | list):
        return orjson.loads(orjson.dumps(value))
    return value


def apply_update(
    doc: Document, update: Update, *, inserting: bool = False, in_place: bool = False
) -> Document:
    """Return a copy of ``doc`` with a (validated) update applied; ``doc`` is left untouched
    unless ``in_place`` (for a caller that owns ``doc``, e.g. one it just parsed)."""
    out: Document = doc if in_place else _clone(doc)
    for op, fields in update.items():
        if op == "$setOnInsert" and not inserting:
            continue
        for path, arg in fields.items():
            segments = path.split(".")
            parent = _parent(out, segments, path, create=op not in ("$unset", "$pull"))
            if parent is None:
                continue
            leaf = segments[-1]
            current: Any = parent.get(leaf, _MISSING)
            if op in ("$set", "$setOnInsert"):
                parent[leaf] = _clone(arg)
            elif op == "$unset":
                parent.pop(leaf, None)
            elif op == "$inc":
                if current is not _MISSING and not is_number(current):
                    raise InvalidQuery(f"cannot $inc {path!r}: it is not a number")
                parent[leaf] = arg if current is _MISSING else current + arg
            elif current is not _MISSING and not isinstance(current, list):
                raise InvalidQuery(f"cannot {op} {path!r}: it is not an array")
            elif op == "$pull":
                if isinstance(current, list):
                    parent[leaf] = [e for e in current if not _pull_matches(e, arg)]
            else:  # $push / $addToSet
                items = arg["$each"] if is_operator_dict(arg) else [arg]
                target = parent.setdefault(leaf, [])
                for item in _clone(items):
                    if op == "$push" or not any(values_equal(e, item) for e in target):
                        target.append(item)
    return out


def _equalities(flt: Filter) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = []
    for key, cond in flt.items():
        if key == "$and":
            pairs.extend(pair for sub in cond for pair in _equalities(sub))
        elif key.startswith("$"):
            continue
        elif not is_operator_dict(cond):
            pairs.append((key, cond))
        elif "$eq" in cond:
            pairs.append((key, cond["$eq"]))
    return pairs


def upsert_seed(flt: Filter) -> Document:
    """The document an upsert starts from: the filter's equality conditions, like Mongo."""
    seed: Document = {}
    for path, value in _equalities(flt):
        seed = apply_update(seed, {"$set": {path: value}})
    return seed
