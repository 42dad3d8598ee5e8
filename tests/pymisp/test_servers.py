"""Connected servers through PyMISP, and a pull from a peer Cairn: the peer is this same Cairn seen by
a sync user of another organisation, so the pull reads the whole feed and brings nothing back (an
instance's own Events never return to it)."""
import os
import uuid

import requests

from pymisp import MISPEvent, MISPOrganisation, MISPServer, MISPUser, PyMISP

URL = os.environ["CAIRN_URL"]
KEY = os.environ["CAIRN_ADMIN_KEY"]


def test_a_server_is_added_edited_pulled_and_deleted_with_pymisp():
    misp = PyMISP(URL, KEY, ssl=False)
    org = MISPOrganisation()
    org.name = f"Peer {uuid.uuid4().hex[:8]}"
    org.uuid = str(uuid.uuid4())
    org.local = False
    org = misp.add_organisation(org, pythonify=True)
    user = MISPUser()
    user.email = f"sync-{uuid.uuid4().hex[:8]}@peer.test"
    user.org_id = org.id
    user.role_id = 5
    user = misp.add_user(user, pythonify=True)
    assert user.authkey

    event = MISPEvent()
    event.info = "shared with every community"
    event.distribution = 3
    event.add_attribute("ip-dst", "198.51.100.42")
    event = misp.add_event(event, pythonify=True)
    try:
        misp.publish(event)

        server = MISPServer()
        server.name = "Peer"
        server.url = URL
        server.authkey = user.authkey
        server.remote_org_id = org.id
        server.pull = True
        server = misp.add_server(server, pythonify=True)
        assert server.name == "Peer" and server.pull
        assert not server.authkey, "the key is never shown again"
        server.name = "Peer (renamed)"
        server = misp.update_server(server, pythonify=True)
        assert server.name == "Peer (renamed)"
        assert any(s.name == "Peer (renamed)" for s in misp.servers(pythonify=True))

        head = requests.get(f"{URL}/health", timeout=10).json()["head"]
        pulled = misp.server_pull(server)
        assert "Pull completed" in pulled["message"], pulled
        report = pulled["report"]
        assert report["position"] >= head, report
        assert report["offered"] == 0 and report["applied"] == 0, report

        assert misp.delete_server(server)["name"] == "Server deleted"
        assert not any(s.id == server.id for s in misp.servers(pythonify=True))
    finally:
        # The live suite counts what exists: leave nothing behind.
        misp.delete_event(event)
        misp.delete_user(user)
        misp.delete_organisation(org)
