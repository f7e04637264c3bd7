"""Marshmallow schemas of the collections API: they own its rules and messages."""
from __future__ import annotations

from typing import Any

import numpy as np
from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from hookline.vector_collections import DTYPES, METRICS, NAME_RE
from webapp.schemas import COLLECTION_MESSAGE, VectorData

#: Query vectors one search request may carry.
MAX_BATCH = 100
#: Ids one delete request may name.
MAX_DELETE_IDS = 10_000
#: Hits one search may ask for.
MAX_K = 1000
#: What a ``vector`` that is not one vector is told.
ONE_VECTOR = "Must be a non-empty list of numbers (one vector)."
#: Longest vector id (SPEC section 8: 1-128 characters).
MAX_VECTOR_ID = 128


class QueryVector(VectorData):
    """One vector: a list of numbers, as a ``(1, dimension)`` float64 array."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> np.ndarray:
        if type(value) is not list or not value:
            raise ValidationError(ONE_VECTOR)
        try:
            return super()._deserialize([value], attr, data, **kwargs)
        except ValidationError:
            # Looked for only now: a list inside is the one mistake told apart.
            if list in set(map(type, value)):
                raise ValidationError(ONE_VECTOR) from None
            raise


class CollectionCreateSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Regexp(NAME_RE, error=COLLECTION_MESSAGE))
    dimension = fields.Integer(strict=True, allow_none=True, load_default=None,
                               validate=validate.Range(min=1))
    metric = fields.String(load_default="cosine", validate=validate.OneOf(METRICS))
    dtype = fields.String(load_default="f32", validate=validate.OneOf(DTYPES))

    def __init__(self, *, max_dimension: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_dimension = max_dimension

    @validates_schema
    def _dimension(self, data: dict[str, Any], **kwargs: Any) -> None:
        dimension = data.get("dimension")
        if data.get("name") == "default":
            if dimension is not None:
                raise ValidationError("'default' takes any dimension; send none.", "dimension")
            return
        if dimension is None:
            raise ValidationError("Missing data for required field.", "dimension")
        if dimension > self.max_dimension:
            raise ValidationError(f"At most {self.max_dimension}.", "dimension")


class SearchFilterSchema(Schema):
    class Meta:
        unknown = RAISE

    task_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class SearchSchema(Schema):
    class Meta:
        unknown = RAISE

    vector = QueryVector()
    vectors = VectorData()
    k = fields.Integer(strict=True, load_default=10, validate=validate.Range(min=1, max=MAX_K))
    filter = fields.Nested(SearchFilterSchema)

    def __init__(self, *, max_dimension: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, most in (("vector", 1), ("vectors", MAX_BATCH)):
            field = self.fields[name]
            assert isinstance(field, VectorData)
            field.max_vectors, field.max_dimension = most, max_dimension

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("vector" in data) == ("vectors" in data):
            raise ValidationError("Send 'vector' (one) or 'vectors' (a batch), not both.", "_schema")


class VectorDeleteSchema(Schema):
    class Meta:
        unknown = RAISE

    ids = fields.List(fields.String(validate=validate.Length(min=1, max=MAX_VECTOR_ID)),
                      validate=validate.Length(min=1, max=MAX_DELETE_IDS))
    task_id = fields.String(validate=validate.Length(min=1, max=64))

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("ids" in data) == ("task_id" in data):
            raise ValidationError("Send 'ids' or 'task_id', not both.", "_schema")


class PageSchema(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Regexp(r"^[A-Za-z0-9_.-]{0,64}$",
                                                                       error="Not a cursor from this API."))
