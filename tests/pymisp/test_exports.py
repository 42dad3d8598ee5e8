"""restSearch exports read back with PyMISP, and the STIX 2.1 bundle checked by stix2-validator."""
import json
import os
import uuid

from pymisp import MISPEvent, MISPObject, PyMISP
from stix2validator import ValidationOptions, validate_string

URL = os.environ["CAIRN_URL"]
KEY = os.environ["CAIRN_ADMIN_KEY"]

# One attribute of every common type (the ones misp-stix maps to STIX objects and patterns).
COMMON = [
    ("ip-src", "198.51.100.1"), ("ip-dst", "198.51.100.2"), ("ip-dst|port", "198.51.100.3|443"),
    ("domain", "evil.example.com"), ("hostname", "c2.evil.example.com"), ("domain|ip", "cdn.example.net|203.0.113.5"),
    ("url", "http://evil.example.com/gate.php?id=1"), ("uri", "/gate.php"), ("link", "https://blog.example.org/report"),
    ("email-src", "bad@evil.example.com"), ("email-dst", "victim@example.org"), ("email-subject", "Invoice"),
    ("md5", "d41d8cd98f00b204e9800998ecf8427e"), ("sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("filename", "dropper.exe"), ("filename|md5", "payload.dll|0cc175b9c0f1b6a831c399e269772661"),
    ("filename|sha256", "payload2.dll|ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"),
    ("regkey", "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\evil"),
    ("regkey|value", "HKCU\\Software\\Evil|payload"), ("mutex", "Global\\evil-mutex"),
    ("user-agent", "Mozilla/5.0 (evil)"), ("AS", "AS64496"), ("vulnerability", "CVE-2021-44228"),
    ("btc", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"), ("x509-fingerprint-sha1", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"),
    ("ja3-fingerprint-md5", "e7d705a3286e19ea42f587b344ee6865"), ("text", "campaign notes"), ("comment", "analyst comment"),
]


def connector() -> PyMISP:
    return PyMISP(URL, KEY, ssl=False)


def fixture_event(misp: PyMISP) -> MISPEvent:
    event = MISPEvent()
    event.info = f"export fixture {uuid.uuid4()}"
    event.distribution = 0
    event.threat_level_id = 2
    event.analysis = 1
    for attr_type, value in COMMON:
        event.add_attribute(attr_type, value, to_ids=attr_type not in ("text", "comment", "link"))
    obj = MISPObject("file")
    obj.add_attribute("filename", "inside-object.bin")
    obj.add_attribute("md5", "900150983cd24fb0d6963f7d28e17f72")
    event.add_object(obj)
    event.add_tag("tlp:green")
    created = misp.add_event(event, pythonify=True)
    assert not isinstance(created, dict), created
    return created


def test_stix21_bundle_of_every_common_type_is_valid():
    misp = connector()
    event = fixture_event(misp)
    try:
        for published in (False, True):
            if published:
                misp.publish(event)
            bundle = misp.search(return_format="stix2", eventid=event.id)
            assert isinstance(bundle, dict) and bundle["type"] == "bundle", bundle
            types = {o["type"] for o in bundle["objects"]}
            assert ("report" if published else "grouping") in types
            assert {"indicator", "observed-data"} <= types
            result = validate_string(json.dumps(bundle), ValidationOptions(version="2.1"))
            assert result.is_valid, [str(e) for e in result.errors]
    finally:
        misp.delete_event(event)


def test_csv_and_text_read_back_with_pymisp():
    misp = connector()
    event = fixture_event(misp)
    try:
        rows = misp.search(return_format="csv", eventid=event.id, pythonify=True)
        assert len(rows) == len(COMMON) + 2
        assert {r["type"] for r in rows} >= {"ip-src", "filename|md5", "md5"}
        empty = misp.search(return_format="csv", eventid=event.id, type_attribute="nothing-like-this", pythonify=True)
        assert empty == []
        misp.publish(event)
        text = misp.search(return_format="text", eventid=event.id)
        lines = [l for l in text.splitlines() if l]
        assert "198.51.100.1" in lines and "campaign notes" not in lines, "text is restrictive: IDS attributes only"
    finally:
        misp.delete_event(event)
