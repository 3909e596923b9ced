"""Collection endpoints. Collections are per user; names are unique per user (case-sensitive).

``collections/list`` answers from a per-(user, page, page_size) snapshot up to
``collections_cache_seconds`` old, like the service's Redis cache keyed on the request:
mutations do not invalidate it, so a client must not rely on list-after-create, and two
pages may come from snapshots taken at different times.
"""

from __future__ import annotations

import uuid

from syncd.emulator.errors import detail
from syncd.emulator.mikshi import timeline
from syncd.emulator.mikshi.context import Context
from syncd.emulator.mikshi.store import CollectionRecord, Duplicate
from syncd.emulator.mikshi.views import collection_record, owned_collection, video_record
from syncd.emulator.routing import Route
from syncd.emulator.validation import Fields, require_path_uuid
from syncd.emulator.wire import Request, Response, json_response

PREFIX = "/api/backend/v1/developer/collections"
DUPLICATE_NAME = "A collection with this name already exists."


def _paging(q: Fields) -> tuple[int, int]:
    page = q.integer("page", default=1, ge=1)
    page_size = q.integer("page_size", default=10, ge=1, le=100)
    return page, page_size


def list_collections(ctx: Context, req: Request) -> Response:
    q = req.query_fields()
    page, page_size = _paging(q)
    q.done()
    assert req.user_id is not None
    key = ("collections", req.user_id, page, page_size)
    max_age = ctx.config.collections_cache_seconds
    if max_age > 0:
        cached = ctx.collections_cache.get(key, max_age, ctx.now())
        if cached is not None:
            return json_response(200, cached)
    colls = ctx.store.list_collections(req.user_id)
    window = colls[(page - 1) * page_size: page * page_size]
    payload = {"data": [collection_record(ctx, req, c) for c in window], "page": page,
               "page_size": page_size, "total": len(colls)}
    if max_age > 0:
        ctx.collections_cache.put(key, payload, ctx.now())
    return json_response(200, payload)


def create(ctx: Context, req: Request) -> Response:
    f = req.body_fields()
    name = f.string("name", required=True, min_len=1, max_len=255)
    description = f.string("description")
    f.done()
    assert req.user_id is not None and name is not None
    rec = CollectionRecord(str(uuid.uuid4()), req.user_id, name, description, ctx.now())
    try:
        ctx.store.create_collection(rec)
    except Duplicate:
        raise detail(409, DUPLICATE_NAME) from None
    return json_response(201, collection_record(ctx, req, rec))


def update(ctx: Context, req: Request) -> Response:
    collection_id = require_path_uuid("collection_id", req.params["collection_id"])
    f = req.body_fields()
    name = f.string("name", min_len=1, max_len=255)
    description = f.string("description")
    f.done()
    coll = owned_collection(ctx, req, collection_id)
    # exclude_none semantics: a field sent as null counts as "not provided".
    changes = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    if not changes:
        raise detail(400, "No fields provided to update")
    try:
        ctx.store.update_collection(coll.collection_id, changes)
    except Duplicate:
        raise detail(409, DUPLICATE_NAME) from None
    fresh = ctx.store.get_collection(coll.collection_id)
    if fresh is None:  # deleted concurrently
        raise detail(404, "Collection not found")
    return json_response(200, collection_record(ctx, req, fresh))


def delete(ctx: Context, req: Request) -> Response:
    coll = owned_collection(ctx, req, require_path_uuid("collection_id",
                                                        req.params["collection_id"]))
    if not ctx.store.delete_collection(coll.collection_id):
        raise detail(404, "Collection not found")
    return json_response(200, {"message": "Collection deleted successfully."})


def list_members(ctx: Context, req: Request) -> Response:
    collection_id = require_path_uuid("collection_id", req.params["collection_id"])
    q = req.query_fields()
    page, page_size = _paging(q)
    sort_by = q.choice("sort_by", ("created_at", "name"), default="created_at")
    sort_order = q.choice("sort_order", ("asc", "desc"), default="desc")
    q.done()
    coll = owned_collection(ctx, req, collection_id)
    videos = list(ctx.store.get_videos(ctx.store.collection_video_ids(coll.collection_id))
                  .values())
    if sort_by == "name":
        videos.sort(key=lambda v: (v.name.casefold(), v.video_id))
    else:
        videos.sort(key=lambda v: (v.created_at, v.video_id))
    if sort_order == "desc":
        videos.reverse()
    window = videos[(page - 1) * page_size: page * page_size]
    return json_response(200, {"data": [video_record(ctx, req, v) for v in window],
                               "page": page, "page_size": page_size, "total": len(videos)})


def add_member(ctx: Context, req: Request) -> Response:
    collection_id = require_path_uuid("collection_id", req.params["collection_id"])
    f = req.body_fields()
    video_id = f.uuid("video_id", required=True)
    f.done()
    assert video_id is not None
    coll = owned_collection(ctx, req, collection_id)
    video = ctx.store.get_video(video_id)
    if video is None:
        raise detail(404, "Video not found")
    if video.user_id != coll.user_id:
        raise detail(400, "Video and collection must share the same parent (user).")
    now = ctx.now()
    for pipeline in timeline.PIPELINES:
        if timeline.run_state(ctx.store.get_run(video_id, pipeline), now).status != "done":
            raise detail(400, "Only fully processed videos can be added to a collection.")
    try:
        ctx.store.add_link(coll.collection_id, video_id, now)
    except Duplicate:
        raise detail(409, "Video is already in this collection.") from None
    return json_response(201, {"message": "Video added to collection."})


def remove_member(ctx: Context, req: Request) -> Response:
    collection_id = require_path_uuid("collection_id", req.params["collection_id"])
    video_id = require_path_uuid("video_id", req.params["video_id"])
    coll = owned_collection(ctx, req, collection_id)
    if not ctx.store.remove_link(coll.collection_id, video_id):
        raise detail(404, "Video is not in this collection.")
    return json_response(200, {"message": "Video removed from collection."})


ROUTES = [
    Route("GET", PREFIX + "/list", list_collections),
    Route("POST", PREFIX + "/create", create),
    Route("PATCH", PREFIX + r"/update/(?P<collection_id>[^/]+)", update),
    Route("DELETE", PREFIX + r"/delete/(?P<collection_id>[^/]+)", delete),
    Route("GET", PREFIX + r"/(?P<collection_id>[^/]+)/videos", list_members),
    Route("POST", PREFIX + r"/(?P<collection_id>[^/]+)/videos", add_member),
    Route("DELETE", PREFIX + r"/(?P<collection_id>[^/]+)/videos/(?P<video_id>[^/]+)",
          remove_member),
]
