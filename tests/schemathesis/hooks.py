"""Schemathesis hooks for thor (loaded by .ci/run through SCHEMATHESIS_HOOKS).

- Authentication: logs in as THOR_ROLE (a demo account, password "demo") and sends the token as
  `Authorization: Bearer`. A 401 (the fuzzer logged the token out, or revoked its device) makes
  schemathesis fetch a new one and replay the request once.
- tus bodies (`application/offset+octet-stream`) are sent as raw bytes, like octet-stream.
"""

import os
import sys
import time

import requests
import schemathesis

BASE = os.environ["THOR_URL"].rstrip("/")
ROLE = os.environ.get("THOR_ROLE", "teamleider")

schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")


def login() -> str:
    # The login throttle per address (60 a minute) is shared with the fuzzer's own logins:
    # wait as long as the server says, a few times at most.
    for _ in range(5):
        res = requests.post(
            f"{BASE}/api/v1/auth/login",
            json={"username": ROLE, "password": "demo", "device_id": f"schemathesis-{ROLE}"},
            timeout=10,
        )
        if res.status_code == 429:
            wait = min(int(res.headers.get("Retry-After", "5")), 65)
            print(f"hooks: login throttled, waiting {wait} s", file=sys.stderr)
            time.sleep(wait)
            continue
        res.raise_for_status()
        return res.json()["token"]
    raise RuntimeError(f"could not log in as {ROLE}")


@schemathesis.auth(refresh_interval=3600)
class DemoLogin:
    def get(self, case, context):
        return login()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
