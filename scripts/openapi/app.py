"""A small REST API whose OpenAPI document FastAPI generates, for Portcullis' OpenAPI tests.

It covers path, query and body parameters, arrays, an enum, tags, a DELETE, a model with nested
references and a recursive model. `python app.py > ../../tests/fixtures/openapi/fastapi.json`
prints the document; `uvicorn app:app` serves it.
"""

from __future__ import annotations

import enum
import json
import sys

from fastapi import FastAPI, Header, HTTPException, Query
from pydantic import BaseModel

app = FastAPI(title="Portcullis test inventory", version="1.0.0")


class Colour(str, enum.Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Address(BaseModel):
    street: str
    city: str


class Owner(BaseModel):
    name: str
    address: Address


class Item(BaseModel):
    name: str
    price: float
    colour: Colour = Colour.red
    tags: list[str] = []
    owner: Owner | None = None


class Category(BaseModel):
    """A tree of categories: the model refers to itself."""

    name: str
    children: list[Category] = []


ITEMS: dict[int, Item] = {}


@app.get("/items", tags=["items"], summary="List items")
def list_items(
    colour: Colour | None = None,
    tag: list[str] = Query(default=[]),
    limit: int = 10,
) -> list[Item]:
    """Items, optionally filtered by colour and tags."""
    found = [i for i in ITEMS.values() if colour is None or i.colour == colour]
    return [i for i in found if all(t in i.tags for t in tag)][:limit]


@app.get("/items/{item_id}", tags=["items"], summary="Read one item")
def read_item(item_id: int, x_request_note: str | None = Header(default=None)) -> Item:
    if item_id not in ITEMS:
        raise HTTPException(status_code=404, detail="no such item")
    return ITEMS[item_id]


@app.put("/items/{item_id}", tags=["items"])
def put_item(item_id: int, item: Item) -> Item:
    ITEMS[item_id] = item
    return item


@app.delete("/items/{item_id}", tags=["items"], summary="Delete an item")
def delete_item(item_id: int) -> dict[str, bool]:
    return {"deleted": ITEMS.pop(item_id, None) is not None}


@app.post("/categories", tags=["categories"], operation_id="createCategory")
def create_category(category: Category) -> Category:
    return category


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    json.dump(app.openapi(), sys.stdout, indent=2)
    sys.stdout.write("\n")
