"""Conformance: the real tuspy client (pinned: tuspy==1.1.0, installed by .ci/run) against a
running thor server started with --demo (THOR_URL). sha1 Upload-Checksum (what
`upload_checksum=True` sends), resume after the app was killed mid-upload, no second transfer
when the photo is already stored, and a creation the server refuses is not retried.

Run: THOR_URL=http://127.0.0.1:PORT python3 tests/conformance/test_tuspy.py
Prints "# tuspy pass N" and "# tuspy fail N"; exits non-zero when a test fails.
"""

import hashlib
import io
import json
import os
import sys
import unittest
import uuid
from datetime import datetime, timedelta, timezone
from importlib.metadata import version

import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

BASE = os.environ.get("THOR_URL")
HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(
    HERE, "..", "..", "..", "shared", "data", "photos", "orientation_1_recurser_Landscape_1.jpg"
)
CHUNK = 64 * 1024


class Wire:
    """Counts what goes over the wire to the upload endpoint: every request tuspy sends goes
    through requests' Session.send; those to /api/v1/uploads are counted per method, with the
    bytes of their bodies."""

    def __init__(self):
        self.requests = {}
        self.body_bytes = 0
        self.checksums = []

    def reset(self):
        self.__init__()


WIRE = Wire()
_send = requests.Session.send


def _counting_send(self, prepared, **kwargs):
    if "/api/v1/uploads" not in prepared.url:
        return _send(self, prepared, **kwargs)
    WIRE.requests[prepared.method] = WIRE.requests.get(prepared.method, 0) + 1
    body = prepared.body
    if body:
        WIRE.body_bytes += len(body)
    if "upload-checksum" in {k.lower() for k in prepared.headers}:
        WIRE.checksums.append(prepared.headers.get("upload-checksum"))
    return _send(self, prepared, **kwargs)


requests.Session.send = _counting_send


def corpus_photo():
    """The corpus photo made unique by bytes after its end-of-image marker: identical files are
    stored once, so each test needs its own."""
    if not os.path.exists(PHOTO):
        raise AssertionError(f"the photo corpus is missing: {PHOTO}")
    with open(PHOTO, "rb") as f:
        return f.read() + f"thor-tuspy {uuid.uuid4()}".encode()


def login(username):
    r = requests.post(
        f"{BASE}/api/v1/auth/login",
        json={"username": username, "password": "demo", "device_id": f"tuspy-{uuid.uuid4()}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def report_and_photos(token, data, n=1):
    sha256 = hashlib.sha256(data).hexdigest()
    now = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    report = {
        "id": str(uuid.uuid4()), "category": "afval", "observed_at": now,
        "location": {"lat": 52.4599, "lon": 4.6218, "accuracy_m": 5, "source": "gps"},
        "description": "Huisvuilzak naast de container", "outcome": "warning",
    }
    r = requests.post(f"{BASE}/api/v1/violations", json=report, headers=auth(token))
    assert r.status_code == 201, r.text
    ids = []
    for _ in range(n):
        pid = str(uuid.uuid4())
        r = requests.post(
            f"{BASE}/api/v1/photos",
            json={
                "id": pid, "violation_id": report["id"], "sha256": sha256,
                "size_bytes": len(data), "mime": "image/jpeg", "captured_at": now,
                "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5,
            },
            headers=auth(token),
        )
        assert r.status_code == 201, r.text
        ids.append(pid)
    return sha256, ids


def record(token, pid):
    r = requests.get(f"{BASE}/api/v1/photos/{pid}", headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def stored_sha(token, pid):
    r = requests.get(f"{BASE}/api/v1/photos/{pid}/original", headers=auth(token))
    assert r.status_code == 200, r.text
    return hashlib.sha256(r.content).hexdigest()


def upload_url(pid):
    return f"{BASE}/api/v1/uploads/{pid}"


class TuspyConformance(unittest.TestCase):
    def setUp(self):
        self.assertEqual(version("tuspy"), "1.1.0", "the pinned tuspy")
        self.token = login("handhaver")
        self.client = tus_client.TusClient(f"{BASE}/api/v1/uploads", headers=auth(self.token))
        WIRE.reset()

    def test_sha1_checksums_and_resume_after_the_app_was_killed(self):
        data = corpus_photo()
        sha256, [pid] = report_and_photos(self.token, data)
        # Creation (POST), then three checksummed chunks, then the app is killed.
        first = self.client.uploader(
            file_stream=io.BytesIO(data), chunk_size=CHUNK, upload_checksum=True,
            metadata={"photo_id": pid, "filetype": "image/jpeg"},
        )
        for _ in range(3):
            first.upload_chunk()
        self.assertEqual(first.offset, 3 * CHUNK)
        self.assertEqual(first.url, upload_url(pid), "the upload URL is the photo's")
        self.assertTrue(WIRE.checksums, "tuspy sent Upload-Checksum")
        self.assertTrue(all(c.startswith("sha1 ") for c in WIRE.checksums), WIRE.checksums)
        self.assertEqual(record(self.token, pid)["upload_offset"], 3 * CHUNK)

        # A new process resumes from the URL: HEAD gives the offset, only the rest is sent.
        WIRE.reset()
        second = self.client.uploader(
            file_stream=io.BytesIO(data), url=upload_url(pid), chunk_size=CHUNK,
            upload_checksum=True,
        )
        self.assertEqual(second.offset, 3 * CHUNK, "resumes where the server stopped")
        second.upload()
        self.assertEqual(WIRE.body_bytes, len(data) - 3 * CHUNK, "only the rest was sent")
        self.assertNotIn("POST", WIRE.requests)
        rec = record(self.token, pid)
        self.assertEqual(rec["upload_state"], "complete")
        self.assertEqual(stored_sha(self.token, pid), sha256)

    def test_a_corrupted_chunk_is_refused_with_460(self):
        data = corpus_photo()
        _, [pid] = report_and_photos(self.token, data)
        up = self.client.uploader(
            file_stream=io.BytesIO(data), url=upload_url(pid), chunk_size=CHUNK,
            upload_checksum=True,
        )
        real = up.checksum_algorithm

        class Wrong:
            def __init__(self, chunk):
                self._h = real(chunk + b"x")

            def digest(self):
                return self._h.digest()

        # tuspy reads the algorithm from the uploader for each request: make it lie.
        up._BaseUploader__checksum_algorithm = Wrong
        with self.assertRaises(TusUploadFailed) as e:
            up.upload_chunk()
        self.assertEqual(e.exception.status_code, 460)
        self.assertEqual(record(self.token, pid)["upload_offset"], 0, "the chunk was dropped")

    def test_no_second_transfer_when_the_photo_is_already_stored(self):
        data = corpus_photo()
        sha256, [first, second] = report_and_photos(self.token, data, 2)
        up = self.client.uploader(
            file_stream=io.BytesIO(data), url=upload_url(first), upload_checksum=True
        )
        up.upload()
        self.assertEqual(WIRE.body_bytes, len(data), "the file went once")
        self.assertEqual(stored_sha(self.token, first), sha256)

        # The same id again, and the same file under another id of this officer.
        for pid in (first, second):
            WIRE.reset()
            again = self.client.uploader(
                file_stream=io.BytesIO(data), url=upload_url(pid), upload_checksum=True
            )
            self.assertEqual(again.offset, len(data), "HEAD: all there")
            again.upload()
            self.assertEqual(WIRE.requests.get("PATCH", 0), 0, f"no PATCH for {pid}")
            self.assertEqual(WIRE.body_bytes, 0, "zero bytes the second time")
            self.assertEqual(record(self.token, pid)["upload_state"], "complete")
        self.assertEqual(stored_sha(self.token, second), sha256)

    def test_a_refused_record_stops_the_creation_with_a_reason(self):
        data = corpus_photo()
        pid = str(uuid.uuid4())
        push = {"changes": {"photos": {"created": [{
            "id": pid, "violation_id": str(uuid.uuid4()),
            "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data),
            "mime": "image/jpeg", "lat": 52.4599, "lon": 4.6218, "accuracy_m": 5,
        }], "updated": [], "deleted": []}}}
        r = requests.post(f"{BASE}/api/v1/sync/push", json=push, headers=auth(self.token))
        self.assertEqual(r.status_code, 200, r.text)
        self.assertEqual(r.json()["experimentalRejectedIds"].get("photos"), [pid])
        WIRE.reset()
        up = self.client.uploader(
            file_stream=io.BytesIO(data), metadata={"photo_id": pid}, retries=2, retry_delay=0
        )
        with self.assertRaises(TusCommunicationError) as e:
            up.upload()
        self.assertEqual(e.exception.status_code, 422)
        problem = json.loads(e.exception.response_content)
        self.assertIn("refused", problem["detail"])
        self.assertTrue(any(f["field"] == "Upload-Metadata.photo_id" for f in problem["errors"]))
        self.assertEqual(WIRE.requests.get("POST"), 1, "one POST")
        self.assertEqual(WIRE.body_bytes, 0)


def main():
    if not BASE:
        print("THOR_URL must point at a running thor server started with --demo")
        return 2
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(TuspyConformance)
    )
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    print(f"# tuspy pass {passed}")
    print(f"# tuspy fail {failed + len(result.skipped)}")
    return 0 if failed == 0 and not result.skipped and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
