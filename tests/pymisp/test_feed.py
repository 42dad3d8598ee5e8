"""This instance's MISP feed (/feeds/public/) read back the way MISP's feed tooling reads one:
manifest.json, then every <uuid>.json loaded by PyMISP's MISPEvent, and hashes.csv."""
import hashlib
import os
import time
import uuid

import requests
from pymisp import MISPEvent, PyMISP

URL = os.environ["CAIRN_URL"]
KEY = os.environ["CAIRN_ADMIN_KEY"]
HEADERS = {"Authorization": KEY, "Accept": "application/json"}


def feed_get(path: str) -> requests.Response:
    return requests.get(f"{URL}/feeds/public/{path}", headers=HEADERS, timeout=30)


def test_every_feed_event_loads_in_pymisp():
    misp = PyMISP(URL, KEY, ssl=False)
    event = MISPEvent()
    event.info = f"feed fixture {uuid.uuid4()}"
    event.distribution = 3
    event.add_attribute("ip-dst", "203.0.113.77")
    event.add_attribute("domain|ip", "feed.example.net|203.0.113.78")
    event.add_attribute("text", "community only", distribution=1)
    event.add_tag("tlp:clear")
    event = misp.add_event(event, pythonify=True)
    misp.publish(event)
    deadline = time.time() + 30
    manifest = {}
    while time.time() < deadline:
        manifest = feed_get("manifest.json").json()
        if event.uuid in manifest:
            break
        time.sleep(0.2)
    assert event.uuid in manifest, manifest
    assert manifest[event.uuid]["info"] == event.info
    assert manifest[event.uuid]["Orgc"]["uuid"]
    for event_uuid in manifest:
        r = feed_get(f"{event_uuid}.json")
        assert r.status_code == 200, (event_uuid, r.text)
        loaded = MISPEvent()
        loaded.load(r.json())
        assert loaded.uuid == event_uuid
        if event_uuid == event.uuid:
            assert {a.value for a in loaded.attributes} == {"203.0.113.77", "feed.example.net|203.0.113.78"}
            assert [t.name for t in loaded.tags] == ["tlp:clear"]
    hashes = set(feed_get("hashes.csv").text.split())
    for value in ("203.0.113.77", "feed.example.net", "203.0.113.78"):
        assert f"{hashlib.md5(value.encode()).hexdigest()},{event.uuid}" in hashes
    assert f"{hashlib.md5(b'community only').hexdigest()},{event.uuid}" not in hashes
    misp.delete_event(event)
    deadline = time.time() + 30
    while time.time() < deadline and event.uuid in feed_get("manifest.json").json():
        time.sleep(0.2)
    assert event.uuid not in feed_get("manifest.json").json(), "a deleted Event leaves the manifest"
