"""PyMongo's generic classes with the document type this code uses (plain dicts), one name each."""

from __future__ import annotations

from typing import Any, TypeAlias

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Document: TypeAlias = dict[str, Any]
"""A BSON document as pymongo decodes it (its values are whatever BSON held: ``Any``)."""
Collection: TypeAlias = AsyncCollection[Document]
Db: TypeAlias = AsyncDatabase[Document]
Client: TypeAlias = AsyncMongoClient[Document]
