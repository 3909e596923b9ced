"""Collections: constraints, pagination, caching."""

from __future__ import annotations

from pathlib import Path

import httpx
from emu_helpers import COL, Api, make_config

from syncd.emulator.mikshi import Emulator


def test_create_update_delete(client: httpx.Client, client_b: httpx.Client) -> None:
    r = client.post(f"{COL}/create", json={"name": "Warehouse", "description": "cams"})
    assert r.status_code == 201
    coll = r.json()
    assert set(coll) == {"collection_id", "parent_id", "parent_type", "name", "description",
                         "created_at", "video_count", "thumbnails"}
    assert coll["video_count"] == 0 and coll["thumbnails"] is None
    assert coll["parent_type"] == "user"
    r = client.post(f"{COL}/create", json={"name": "Warehouse"})
    assert r.status_code == 409
    assert r.json() == {"detail": "A collection with this name already exists."}
    assert client_b.post(f"{COL}/create", json={"name": "Warehouse"}).status_code == 201
    assert client.post(f"{COL}/create", json={"name": ""}).status_code == 422
    assert client.post(f"{COL}/create", json={"name": "x" * 256}).status_code == 422
    assert client.post(f"{COL}/create", json={"name": "x" * 255}).status_code == 201

    cid = coll["collection_id"]
    r = client.patch(f"{COL}/update/{cid}", json={})
    assert r.status_code == 400 and r.json() == {"detail": "No fields provided to update"}
    r = client_b.patch(f"{COL}/update/{cid}", json={"name": "mine"})
    assert r.status_code == 403
    assert r.json() == {"detail": "Not authorized for this collection"}
    assert client.patch(f"{COL}/update/00000000-0000-4000-8000-000000000000",
                        json={"name": "n"}).status_code == 404
    client.post(f"{COL}/create", json={"name": "Other"})
    assert client.patch(f"{COL}/update/{cid}", json={"name": "Other"}).status_code == 409
    r = client.patch(f"{COL}/update/{cid}", json={"description": "new"})
    assert r.status_code == 200 and r.json()["description"] == "new"
    assert r.json()["name"] == "Warehouse"

    assert client_b.delete(f"{COL}/delete/{cid}").status_code == 403
    r = client.delete(f"{COL}/delete/{cid}")
    assert r.status_code == 200 and r.json() == {"message": "Collection deleted successfully."}
    assert client.delete(f"{COL}/delete/{cid}").status_code == 404


def test_add_video_constraints(api: Api, api_b: Api, client: httpx.Client,
                               client_b: httpx.Client, admin: httpx.Client) -> None:
    cid = client.post(f"{COL}/create", json={"name": "c"}).json()["collection_id"]
    unprocessed = api.upload(b"raw", name="raw")
    r = client.post(f"{COL}/{cid}/videos", json={"video_id": unprocessed})
    assert r.status_code == 400
    assert r.json() == {"detail": "Only fully processed videos can be added to a collection."}
    vid = api.processed_video("good")
    r = client.post(f"{COL}/{cid}/videos", json={"video_id": vid})
    assert r.status_code == 201 and r.json() == {"message": "Video added to collection."}
    r = client.post(f"{COL}/{cid}/videos", json={"video_id": vid})
    assert r.status_code == 409 and r.json() == {"detail": "Video is already in this collection."}
    assert client_b.post(f"{COL}/{cid}/videos", json={"video_id": vid}).status_code == 403
    foreign = api_b.processed_video("theirs")
    r = client.post(f"{COL}/{cid}/videos", json={"video_id": foreign})
    assert r.status_code == 400
    assert r.json() == {"detail": "Video and collection must share the same parent (user)."}
    missing = "00000000-0000-4000-8000-0000000000aa"
    r = client.post(f"{COL}/{cid}/videos", json={"video_id": missing})
    assert r.status_code == 404 and r.json() == {"detail": "Video not found"}
    r = client.post(f"{COL}/00000000-0000-4000-8000-0000000000bb/videos", json={"video_id": vid})
    assert r.status_code == 404 and r.json() == {"detail": "Collection not found"}

    listing = client.get(f"{COL}/{cid}/videos").json()
    assert listing["total"] == 1 and listing["data"][0]["video_id"] == vid
    assert listing["data"][0]["status"] == "processed"
    coll = client.get(f"{COL}/list").json()["data"][0]
    assert coll["video_count"] == 1 and len(coll["thumbnails"]) == 1
    assert admin.get("/_admin/collections").json()[0]["video_ids"] == [vid]

    r = client.delete(f"{COL}/{cid}/videos/{vid}")
    assert r.status_code == 200 and r.json() == {"message": "Video removed from collection."}
    r = client.delete(f"{COL}/{cid}/videos/{vid}")
    assert r.status_code == 404 and r.json() == {"detail": "Video is not in this collection."}
    # Deleting a collection keeps its videos.
    client.post(f"{COL}/{cid}/videos", json={"video_id": vid})
    client.delete(f"{COL}/delete/{cid}")
    assert admin.get(f"/_admin/videos/{vid}").status_code == 200


def test_pagination_and_validation(client: httpx.Client) -> None:
    names = [f"c{i:02d}" for i in range(7)]
    for n in names:
        assert client.post(f"{COL}/create", json={"name": n}).status_code == 201
    seen = []
    page = 1
    while True:
        body = client.get(f"{COL}/list", params={"page": page, "page_size": 3}).json()
        assert body["page"] == page and body["page_size"] == 3 and body["total"] == 7
        if not body["data"]:
            break
        seen += [c["name"] for c in body["data"]]
        page += 1
    assert sorted(seen) == names and page == 4
    assert client.get(f"{COL}/list").json()["page_size"] == 10
    for params in ({"page_size": 101}, {"page_size": 0}, {"page": 0}, {"page": "x"}):
        r = client.get(f"{COL}/list", params=params)
        assert r.status_code == 422, params
        assert isinstance(r.json()["detail"], list)


def test_collection_videos_pagination_and_sort(api: Api, client: httpx.Client) -> None:
    cid = client.post(f"{COL}/create", json={"name": "c"}).json()["collection_id"]
    vids = [api.processed_video(f"v{i}") for i in range(3)]
    for v in vids:
        assert client.post(f"{COL}/{cid}/videos", json={"video_id": v}).status_code == 201
    p1 = client.get(f"{COL}/{cid}/videos", params={"page_size": 2}).json()
    p2 = client.get(f"{COL}/{cid}/videos", params={"page_size": 2, "page": 2}).json()
    assert p1["total"] == 3 and len(p1["data"]) == 2 and len(p2["data"]) == 1
    assert [v["video_id"] for v in p1["data"] + p2["data"]] == vids[::-1]
    by_name = client.get(f"{COL}/{cid}/videos", params={"sort_by": "name",
                                                        "sort_order": "asc"}).json()
    assert [v["name"] for v in by_name["data"]] == ["v0", "v1", "v2"]
    assert client.get(f"{COL}/{cid}/videos", params={"page_size": 101}).status_code == 422


def test_list_is_cached_per_user(tmp_path: Path) -> None:
    cfg = make_config(tmp_path / "d", collections_cache_seconds=300)
    with Emulator(cfg) as emu, httpx.Client(base_url=emu.base_url,
                                            headers={"X-API-Key": cfg.api_keys[0]}) as c:
        assert c.get(f"{COL}/list").json()["total"] == 0
        assert c.post(f"{COL}/create", json={"name": "new"}).status_code == 201
        assert c.get(f"{COL}/list").json()["total"] == 0  # stale snapshot, as documented
        emu.advance_clock(301)
        assert c.get(f"{COL}/list").json()["total"] == 1
