"""Marshmallow schemas: they own the rules and the error messages.

Vectors are checked with numpy in one field (``VectorData``) instead of a
marshmallow field per number: for a 16 x 64 job that is a few microseconds
instead of a few milliseconds.
"""
from __future__ import annotations

import array
import math
import re
from itertools import chain
from typing import Any

import numpy as np
import orjson
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from hookline.task_record import NOT_INDEXED
from hookline.vector_collections import DEFAULT

#: Largest ``metadata`` object, as JSON bytes.
MAX_METADATA_BYTES = 16 * 1024

_NUMBER_TYPES = frozenset({int, float})
_COLLECTION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

COLLECTION_MESSAGE = "Must be 1-64 letters, digits, '_', '.' or '-'."
SHAPE_MESSAGE = "Must be a list of numbers, or a list of equal-length lists of numbers."


class VectorData(fields.Field):
    """A list of numbers (one-dimensional vectors) or a list of equal-length rows.

    Deserialises to a C-contiguous float64 array of shape ``(count, dimension)``.
    """

    def __init__(self, *, max_vectors: int = 100_000, max_dimension: int = 4096, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_vectors = max_vectors
        self.max_dimension = max_dimension

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> np.ndarray:
        if type(value) is not list:
            raise ValidationError(SHAPE_MESSAGE)
        if not value:
            raise ValidationError("Must hold at least one vector.")
        if len(value) > self.max_vectors:
            raise ValidationError(
                f"Holds {len(value)} vectors; at most {self.max_vectors} are accepted."
            )
        if type(value[0]) is list:
            rows = value
            if set(map(type, rows)) != {list}:
                raise ValidationError("Mixes numbers and lists. " + SHAPE_MESSAGE)
            lengths = set(map(len, rows))
            if len(lengths) != 1:
                raise ValidationError(
                    f"Rows have different lengths ({min(lengths)} to {max(lengths)}); "
                    "every vector must have the same dimension."
                )
            dimension = lengths.pop()
            if dimension == 0:
                raise ValidationError("Vectors must hold at least one number.")
            if dimension > self.max_dimension:
                raise ValidationError(
                    f"Vectors have dimension {dimension}; at most {self.max_dimension} is accepted."
                )
            shape = (len(rows), dimension)
        else:
            shape = (len(value), 1)
            rows = [value]
        # array("d") takes real numbers only, in C: a string, null, object or
        # deeper list raises TypeError, and the array is built in a third of
        # the time numpy takes from a list. A boolean is the one other value
        # it takes (as 0.0 or 1.0), so only vectors holding an exact 0 or 1
        # have their values' types looked at one by one.
        numbers = array.array("d")
        try:
            for row in rows:
                numbers.fromlist(row)
        except TypeError:
            raise ValidationError(self._type_message(set(map(type, chain.from_iterable(rows))))) from None
        except OverflowError:
            raise ValidationError("Holds a number too large to represent.") from None
        flat = np.frombuffer(numbers, dtype=np.float64)
        if ((flat == 0.0) | (flat == 1.0)).any():
            seen = set(map(type, chain.from_iterable(rows)))
            if not seen <= _NUMBER_TYPES:
                raise ValidationError(self._type_message(seen))
        if not np.isfinite(flat).all():
            raise ValidationError("Every value must be a finite number (no NaN or Infinity).")
        return flat.reshape(shape)

    @staticmethod
    def _type_message(seen: set[type]) -> str:
        if bool in seen:
            return "Holds a boolean; every value must be a number."
        if str in seen:
            return "Holds a string; every value must be a number."
        if list in seen:
            return "Holds lists nested deeper than two levels. " + SHAPE_MESSAGE
        if dict in seen or type(None) in seen:
            return "Holds an object or null; every value must be a number."
        return "Every value must be a number."


def _has_nonfinite(value: Any) -> bool:
    """Whether a decoded JSON value holds NaN or an infinity anywhere."""
    pending = [value]
    while pending:
        item = pending.pop()
        if type(item) is float and not math.isfinite(item):
            return True
        if type(item) is dict:
            pending.extend(item.values())
        elif type(item) is list:
            pending.extend(item)
    return False


class JsonBoolean(fields.Boolean):
    """``true`` or ``false`` as JSON writes them; not ``0``, ``1`` or ``"true"``.

    (``fields.Boolean(truthy={True}, falsy={False})`` lets ``1`` and ``0``
    through: they are equal to ``True`` and ``False`` in Python's sets.)
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def not_indexed_names_no_collection(data: dict[str, Any]) -> None:
    """A job sent with ``"index": false`` goes into no collection, so it names none.

    Its vectors then need no ids either: ids name vectors in a collection.

    Raises:
        ValidationError: it names a collection (``collection`` or
            ``metadata.collection``) or ids (``ids``, ``ids_upload_id``).
    """
    if data.get("index", True):
        return
    named = {"collection": data.get("collection"),
             "metadata": (data.get("metadata") or {}).get("collection"),
             "ids": data.get("ids"), "ids_upload_id": data.get("ids_upload_id")}
    for field, value in named.items():
        if value is not None:
            raise ValidationError(
                'A job sent with "index": false goes into no collection; send no collection '
                "or ids with it, or leave index out.", field)


def job_collection(data: dict[str, Any]) -> str:
    """The collection a job's vectors go into: ``collection``, else
    ``metadata.collection``, else ``default``; ``NOT_INDEXED`` with ``"index": false``."""
    if not data["index"]:
        return NOT_INDEXED
    return data.get("collection") or str(data["metadata"].get("collection", DEFAULT))


class TaskSubmitSchema(Schema):
    class Meta:
        unknown = RAISE

    vector_data = VectorData(required=True)
    metadata = fields.Dict(keys=fields.String(), load_default=dict)
    callback_url = fields.String(validate=validate.Length(min=1, max=2048))
    callback_id = fields.String(validate=validate.Length(min=1, max=64))
    collection = fields.String(validate=validate.Regexp(_COLLECTION_RE, error=COLLECTION_MESSAGE))
    ids = fields.List(fields.String(validate=validate.Length(min=1, max=128)))
    #: ``false``: processed and summarised, kept in no collection.
    index = JsonBoolean(load_default=True)

    def __init__(self, *, max_vectors: int, max_dimension: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The limits come from configuration, so they are set per instance.
        vector_field = self.fields["vector_data"]
        assert isinstance(vector_field, VectorData)
        vector_field.max_vectors = max_vectors
        vector_field.max_dimension = max_dimension

    @validates("metadata")
    def _metadata_size(self, value: dict[str, Any], **kwargs: Any) -> None:
        size = len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
        if size > MAX_METADATA_BYTES:
            raise ValidationError(
                f"Is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted."
            )
        # orjson would write NaN and Infinity as null: refuse them instead of
        # echoing back something else than was sent.
        if _has_nonfinite(value):
            raise ValidationError("Every number must be finite (no NaN or Infinity).")
        collection = value.get("collection")
        if collection is not None and (
            not isinstance(collection, str) or not _COLLECTION_RE.match(collection)
        ):
            raise ValidationError(
                "metadata.collection must be 1-64 letters, digits, '_', '.' or '-'."
            )


    @validates_schema
    def _index_or_collection(self, data: dict[str, Any], **kwargs: Any) -> None:
        not_indexed_names_no_collection(data)

    @validates_schema
    def _ids_fit(self, data: dict[str, Any], **kwargs: Any) -> None:
        ids, vectors = data.get("ids"), data.get("vector_data")
        if ids is None or vectors is None:
            return
        if len(ids) != len(vectors):
            raise ValidationError(
                f"Holds {len(ids)} ids for {len(vectors)} vectors; send one id per vector.", "ids"
            )
        if len(set(ids)) != len(ids):
            raise ValidationError("Holds the same id twice; ids must be unique within a job.",
                                  "ids")


class ListQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED")),
    )
