"""A small REST API whose OpenAPI document FastAPI generates, for Portcullis' OpenAPI tests.

It covers path, query and body parameters, arrays, an enum, tags, a DELETE, a model with nested
references and a recursive model; for the end-to-end tests also a raw image upload (a body
Portcullis cannot send, so the operation is left out), a slow call, a large answer, a 500,
endpoints behind FastAPI's security schemes that echo the credentials they received, and a count
of the requests each path received (`/stats`), which shows what reached the API.

`python app.py > ../../tests/fixtures/openapi/fastapi.json` prints the document;
`python app.py serve [--port N] [--exit-with-parent]` serves it on 127.0.0.1 (port 0: any free
one) and prints `READY http://127.0.0.1:PORT` once it listens (`tests/it/support/openapi.rs`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import enum
import json
import os
import socket
import sys
import threading
import time

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
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


@app.post(
    "/items/{item_id}/photo",
    tags=["items"],
    summary="Upload a photo",
    # FastAPI's way to take a raw body: declared in the document, read from the request.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def put_photo(item_id: int, request: Request) -> dict[str, int]:
    return {"item_id": item_id, "bytes": len(await request.body())}


@app.post("/categories", tags=["categories"], operation_id="createCategory")
def create_category(category: Category) -> Category:
    return category


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


# What reached the API: requests per path, since the process started.
CALLS: collections.Counter[str] = collections.Counter()


@app.middleware("http")
async def count_calls(request: Request, call_next):
    CALLS[request.url.path] += 1
    return await call_next(request)


@app.get("/stats", tags=["stats"], summary="Requests received per path")
def stats() -> dict[str, int]:
    return dict(CALLS)


@app.get("/calls/{key}", tags=["calls"], summary="Count this key's calls")
def count_key(key: str) -> dict[str, str | int]:
    """How many requests for this key reached the API, this one included."""
    return {"key": key, "calls": CALLS[f"/calls/{key}"]}


@app.get("/slow", tags=["slow"], summary="Answer after a while")
async def slow(seconds: float = Query(ge=0, le=60)) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/large", tags=["large"], summary="A long list")
def large(count: int = Query(ge=0, le=100_000)) -> list[dict[str, str | int]]:
    return [{"index": i, "text": f"generated item number {i}"} for i in range(count)]


@app.get("/fail", tags=["fail"], summary="Always fails")
def fail() -> dict[str, str]:
    raise HTTPException(status_code=500, detail="the inventory store is on fire")


# FastAPI's security schemes, declared as FastAPI apps declare them. With auto_error=False the
# request is served whatever it carries, so each endpoint shows what it received.
bearer = HTTPBearer(auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)
api_key_query = APIKeyQuery(name="api_key", auto_error=False)


def received(request: Request) -> dict[str, str | None]:
    headers = request.headers
    return {
        "authorization": headers.get("authorization"),
        "x_api_key": headers.get("x-api-key"),
        "api_key": request.query_params.get("api_key"),
        "assertion": headers.get("x-portcullis-assertion"),
        "user": headers.get("x-portcullis-user"),
        "email": headers.get("x-portcullis-email"),
    }


@app.get("/echo", tags=["echo"], summary="What this request carried")
def echo(request: Request, x_note: str | None = Header(default=None)) -> dict[str, str | None]:
    """Also the header parameter `x-note`, as FastAPI read it."""
    return received(request) | {"note": x_note}


@app.get("/echo/bearer", tags=["echo"], summary="What a bearer-protected request carried")
def echo_bearer(
    request: Request, _: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> dict[str, str | None]:
    return received(request)


@app.get("/echo/header-key", tags=["echo"], summary="What an API-key-protected request carried")
def echo_header_key(
    request: Request, _: str | None = Depends(api_key_header)
) -> dict[str, str | None]:
    return received(request)


@app.get("/echo/query-key", tags=["echo"], summary="What a query-key-protected request carried")
def echo_query_key(
    request: Request, _: str | None = Depends(api_key_query)
) -> dict[str, str | None]:
    return received(request)


def serve(port: int, exit_with_parent: bool) -> None:
    import uvicorn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    if exit_with_parent:
        parent = os.getppid()

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    print(f"READY http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print the OpenAPI document, or serve the app.")
    commands = parser.add_subparsers(dest="command")
    serving = commands.add_parser("serve", help="serve on 127.0.0.1")
    serving.add_argument("--port", type=int, default=0)
    serving.add_argument("--exit-with-parent", action="store_true")
    arguments = parser.parse_args()
    if arguments.command == "serve":
        serve(arguments.port, arguments.exit_with_parent)
    else:
        json.dump(app.openapi(), sys.stdout, indent=2)
        sys.stdout.write("\n")
