#!/usr/bin/env python3
"""Runs schemathesis against a live rewardsd: starts the server on a fresh data dir, creates a
small world (a business, its keys, a merchant, a TAP, a contact, a purchase, a scheme, an offer,
a processor) so that paths name things that exist, and lets schemathesis generate requests for
every operation of /openapi.json. Fails on any 5xx, any answer that does not match the
document, any dropped connection, or a server that is no longer alive at the end.

Usage: schemathesis.py RELEASE_OR_DEBUG_BINARY SCHEMATHESIS_EXECUTABLE
Environment: SCHEMATHESIS_EXAMPLES (per operation, default 25), SCHEMATHESIS_SEED (default 1).
"""

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ADMIN_KEY = "schemathesis-operator-key-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, key=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def must(expected, answer, what):
    status, body = answer
    if status != expected:
        sys.exit(f"setting up the world: {what} answered {status}: {body}")
    return body


def build_world(base):
    business = must(201, call(base, "POST", "/v1/businesses", ADMIN_KEY,
                              {"name": "Fuzzed shop", "currency": "EUR"}), "business")["id"]
    key = must(201, call(base, "POST", "/v1/keys", ADMIN_KEY,
                         {"role": "business", "business_id": business}), "business key")
    processor = must(201, call(base, "POST", "/v1/processors", ADMIN_KEY,
                               {"name": "Network"}), "processor")["id"]
    processor_key = must(201, call(base, "POST", "/v1/keys", ADMIN_KEY,
                                   {"role": "processor", "processor_id": processor}),
                         "processor key")["key"]
    merchant = must(201, call(base, "POST", f"/v1/businesses/{business}/merchants", key["key"],
                              {"name": "Branch"}), "merchant")["id"]
    must(201, call(base, "POST", f"/v1/businesses/{business}/taps", key["key"],
                   {"code": "T-FUZZ", "merchant_id": merchant}), "tap")
    contact = must(201, call(base, "POST", f"/v1/businesses/{business}/contacts", key["key"],
                             {"code": "C-FUZZ"}), "contact")
    must(201, call(base, "POST", f"/v1/wallets/{contact['wallet_id']}/topups", key["key"],
                   {"amount": "50.00"}), "top-up")
    offer = must(201, call(base, "POST", f"/v1/businesses/{business}/offers", key["key"],
                           {"name": "10%", "goal": "spend",
                            "award": {"kind": "percent", "percent": "10"},
                            "redeem": "instant"}), "offer")["id"]
    scheme = must(201, call(base, "POST", f"/v1/businesses/{business}/schemes", key["key"],
                            {"name": "Staff", "sign_up": "code", "codes": ["S-1"]}),
                  "scheme")["id"]
    purchase = must(201, call(base, "POST", "/v1/purchases", key["key"],
                              {"identity": {"contact_code": "C-FUZZ"},
                               "lines": [{"sku": "A", "quantity": "1", "unit_price": "9.99"}]}),
                    "purchase")["id"]
    estimate = must(201, call(base, "POST", "/v1/estimates", key["key"],
                              {"identity": {"contact_code": "C-FUZZ"}, "total_amount": "5.00",
                               "spend": {"amount": "all"}, "hold": True,
                               "approval": "required"}),
                    "estimate")["id"]
    return {
        "b": business,
        "estimate": estimate,
        "c": contact["id"],
        "w": contact["wallet_id"],
        "id": purchase,
        "o": offer,
        "s": scheme,
        "currency": "USD",
        "business_key": key["key"],
        "processor_key": processor_key,
    }


CONFIG = """\
# Written by .ci/schemathesis.py for one run.
seed = {seed}
base-url = "{base}"
headers = {{ Authorization = "Bearer {admin}" }}

[generation]
max-examples = {examples}
database = "none"

[checks]
# Valid data may still be refused for reasons a schema cannot say (an unknown currency, an
# identity that names no contact): that is not a failure.
positive_data_acceptance.enabled = false

[parameters]
b = "{b}"
c = "{c}"
w = "{w}"
o = "{o}"
s = "{s}"
currency = "{currency}"

# Paths named {{id}}: a purchase's id (purchases, events) or the business's own id.
[[operations]]
include-path-regex = "^/v1/(purchases|events)/"
parameters = {{ id = "{id}" }}

# Paths of an estimate: a payment request of the contact, with a hold.
[[operations]]
include-path-regex = "^/v1/estimates/"
parameters = {{ id = "{estimate}" }}

[[operations]]
include-path-regex = "^/v1/businesses/\\\\{{id\\\\}}"
parameters = {{ id = "{b}" }}

# A batch answers every item, valid or not, with its own result inside a 200.
[[operations]]
include-path-regex = ":batch$"
checks.negative_data_rejection.enabled = false

# Records in a source's own format, through the built-in Shopify mapping with a business key:
# every record, valid or not, is answered with its own result inside a 200.
[[operations]]
include-path-regex = "^/v1/ingest/"
parameters = {{ source = "shopify" }}
headers = {{ Authorization = "Bearer {business_key}" }}
checks.negative_data_rejection.enabled = false

[[operations]]
include-tag = "processors"
headers = {{ Authorization = "Bearer {processor_key}" }}

[[operations]]
include-path = "/v1/purchases/claims"
headers = {{ Authorization = "Bearer {business_key}" }}

# A backup writes a store wherever an operator names: generated paths are sent with a business
# key, refused before anything is written.
[[operations]]
include-path = "/v1/backups"
headers = {{ Authorization = "Bearer {business_key}" }}
"""


def main():
    binary, schemathesis = sys.argv[1], sys.argv[2]
    examples = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
    seed = int(os.environ.get("SCHEMATHESIS_SEED", "1"))
    work = tempfile.mkdtemp(prefix="rewards-schemathesis-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen(
        [binary, "--data-dir", os.path.join(work, "data"), "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, "REWARDS_ADMIN_KEY": ADMIN_KEY, "RUST_LOG": "warn"},
        stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            try:
                if call(base, "GET", "/health/ready")[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None:
                sys.exit(f"rewardsd exited with {server.returncode} before it was ready")
            time.sleep(0.1)
        world = build_world(base)
        config = os.path.join(work, "schemathesis.toml")
        with open(config, "w") as f:
            f.write(CONFIG.format(seed=seed, base=base, admin=ADMIN_KEY, examples=examples,
                                  **world))
        print(f"schemathesis: {examples} examples per operation, seed {seed}", flush=True)
        run = subprocess.run(
            [schemathesis, "--no-color", "--config-file", config, "run",
             "--request-timeout", "30", base + "/openapi.json"],
            cwd=work)
        alive = server.poll() is None and call(base, "GET", "/health/live")[0] == 200
        answered = server_answers(base)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    with open(os.path.join(work, "server.log")) as f:
        panics = [line for line in f if "panicked" in line]
    print("rewardsd answered: " + ", ".join(f"{n} {k}" for k, n in sorted(answered.items())))
    failed = []
    if run.returncode != 0:
        failed.append(f"schemathesis found failures (exit {run.returncode})")
    if not alive:
        failed.append("the server did not survive the run")
    if answered.get("5xx"):
        failed.append(f"{answered['5xx']} answers were 5xx")
    if panics:
        failed.append(f"the server panicked: {panics[0].strip()}")
    if failed:
        sys.exit("schemathesis run failed: " + "; ".join(failed) + f" (logs in {work})")
    print("schemathesis run clean: no 5xx, no schema mismatch, no dropped connection, no panic")


def server_answers(base):
    """Requests the server answered during the run, by status class, from its own metrics."""
    request = urllib.request.Request(base + "/metrics")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    counts = {}
    for line in text.splitlines():
        m = re.match(r'rewards_http_requests_total\{.*status="(\d)\d\d".*\} (\d+)$', line)
        if m:
            counts[m.group(1) + "xx"] = counts.get(m.group(1) + "xx", 0) + int(m.group(2))
    return counts


if __name__ == "__main__":
    main()
