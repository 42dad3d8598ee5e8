"""Steady load for the fault-injection test: CLIENTS threads, each adding attributes (a fresh uuid each)
to its own Event for SECONDS seconds. Records every acknowledged attribute (a 200 whose answer is that
attribute) and judges every other answer: an error must be JSON; a 200 must never be a wrong answer.
Writes ACKED (one uuid per line) and a JSON summary on stdout."""
import json
import random
import sys
import threading
import time
import uuid

import requests

URL, KEY, SECONDS, CLIENTS, ACKED = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
HEADERS = {"Authorization": KEY, "Accept": "application/json", "Content-Type": "application/json"}
lock = threading.Lock()
acked, statuses, violations = [], {}, []


def note(key):
    with lock:
        statuses[key] = statuses.get(key, 0) + 1


def client(n):
    s = requests.Session()
    event = None
    deadline = time.time() + SECONDS
    while time.time() < deadline:
        try:
            if event is None:
                r = s.post(f"{URL}/events/add", json={"info": f"fault load {n}", "distribution": 0}, headers=HEADERS, timeout=15)
                if r.status_code == 200:
                    event = r.json()["Event"]["id"]
                else:
                    note(f"events/add {r.status_code}")
                    time.sleep(0.2)
                continue
            u = str(uuid.uuid4())
            value = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            r = s.post(f"{URL}/attributes/add/{event}", json={"uuid": u, "type": "ip-dst", "value": value, "comment": "fault load"},
                       headers=HEADERS, timeout=15)
            note(str(r.status_code))
            try:
                body = r.json()
            except ValueError:
                violations.append(f"{r.status_code} is not JSON: {r.text[:200]}")
                continue
            if r.status_code == 200:
                got = body.get("Attribute", {})
                if got.get("uuid") != u or got.get("value") != value:
                    violations.append(f"wrong answer for {u} {value}: {str(body)[:200]}")
                else:
                    with lock:
                        acked.append(u)
            elif r.status_code >= 500 and r.status_code != 503:
                violations.append(f"{r.status_code}: {str(body)[:200]}")
            else:
                time.sleep(0.1)
        except requests.RequestException as e:
            note(type(e).__name__)  # the API is down or restarting: a clean transport error
            time.sleep(0.2)


threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(ACKED, "w") as f:
    f.write("".join(u + "\n" for u in acked))
print(json.dumps({"acknowledged": len(acked), "answers": statuses, "violations": violations}))
