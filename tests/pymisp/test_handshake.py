"""PyMISP's constructor handshake against a running Cairn (getVersion, users/view/me, describeTypes)."""
import json
import os
from pathlib import Path

import pymisp
import pytest
from pymisp import PyMISP
from pymisp.exceptions import PyMISPError

URL = os.environ["CAIRN_URL"]
KEY = os.environ["CAIRN_ADMIN_KEY"]


def test_constructor_handshake_succeeds_as_site_admin():
    misp = PyMISP(URL, KEY, ssl=False)
    assert misp._current_role.perm_site_admin
    assert misp._current_user.org_id == "1"
    version = misp.misp_instance_version
    assert all(part.isdigit() for part in version["version"].split("."))


def test_describe_types_is_pymisps_own_file():
    misp = PyMISP(URL, KEY, ssl=False)
    remote = misp.describe_types_remote
    bundled = json.loads((Path(pymisp.__file__).parent / "data" / "describeTypes.json").read_text())["result"]
    assert remote == bundled


def test_a_wrong_key_is_refused_with_misps_message():
    with pytest.raises(PyMISPError) as e:
        PyMISP(URL, "A" * 40, ssl=False)
    assert "Authentication failed" in str(e.value)
