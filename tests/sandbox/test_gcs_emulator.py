"""Our generation-precondition patch of the GCS emulator, against real GCS semantics: a write or delete whose
`ifGenerationMatch` / `ifGenerationNotMatch` does not hold is refused with 412 and changes nothing; 0 means
"no live object"; a delete of a missing object is 404 whatever the precondition. Driven through the
google-cloud-storage client, simple, multipart and resumable uploads alike."""

from __future__ import annotations

import pytest
from google.api_core.exceptions import NotFound, PreconditionFailed

from sandbox.gcs import GcsEmulatorProcess

BUCKET = "preconditions"
BIG = b"x" * (600 * 1024)  # more than two 256 KiB chunks: a resumable upload in three requests


@pytest.fixture(scope="module")
def bucket():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with GcsEmulatorProcess((BUCKET,)) as gcs, pytest.MonkeyPatch.context() as env:
        env.setenv("STORAGE_EMULATOR_HOST", gcs.url)
        yield storage.Client(project="sandbox", credentials=AnonymousCredentials()).bucket(BUCKET)


def upload(blob, data: bytes, resumable: bool, **precondition) -> None:
    blob.chunk_size = 256 * 1024 if resumable else None
    blob.upload_from_string(data, retry=None, **precondition)


@pytest.mark.parametrize("resumable", [False, True], ids=["multipart", "resumable"])
def test_if_generation_match_zero_creates_only_when_absent(bucket, resumable):
    blob = bucket.blob(f"create-once-{resumable}")
    upload(blob, BIG if resumable else b"first", resumable, if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        upload(bucket.blob(blob.name), b"second", resumable, if_generation_match=0)
    assert bucket.blob(blob.name).download_as_bytes() == (BIG if resumable else b"first")


@pytest.mark.parametrize("resumable", [False, True], ids=["multipart", "resumable"])
def test_if_generation_match_replaces_only_the_generation_read(bucket, resumable):
    name = f"replace-{resumable}"
    upload(bucket.blob(name), b"v1", False)
    read = bucket.get_blob(name).generation
    upload(bucket.blob(name), b"v2", False)  # a concurrent writer gets in between
    with pytest.raises(PreconditionFailed):
        upload(bucket.blob(name), BIG, resumable, if_generation_match=read)
    assert bucket.blob(name).download_as_bytes() == b"v2"
    current = bucket.get_blob(name).generation
    upload(bucket.blob(name), BIG, resumable, if_generation_match=current)
    assert bucket.blob(name).download_as_bytes() == BIG and bucket.get_blob(name).generation != current


def test_a_nonzero_generation_match_fails_on_a_missing_object(bucket):
    with pytest.raises(PreconditionFailed):
        upload(bucket.blob("never-written"), b"x", False, if_generation_match=12345)
    assert bucket.get_blob("never-written") is None


def test_if_generation_not_match(bucket):
    upload(bucket.blob("not-match"), b"v1", False)
    live = bucket.get_blob("not-match").generation
    with pytest.raises(PreconditionFailed):
        upload(bucket.blob("not-match"), b"v2", False, if_generation_not_match=live)
    with pytest.raises(PreconditionFailed):  # 0: the object must exist
        upload(bucket.blob("absent-not-match"), b"v1", False, if_generation_not_match=0)
    upload(bucket.blob("not-match"), b"v3", False, if_generation_not_match=live + 1)
    assert bucket.blob("not-match").download_as_bytes() == b"v3"


def test_delete_honours_the_generation_and_a_missing_object_is_404(bucket):
    upload(bucket.blob("doomed"), b"v1", False)
    live = bucket.get_blob("doomed").generation
    with pytest.raises(PreconditionFailed):
        bucket.blob("doomed").delete(if_generation_match=live + 1, retry=None)
    assert bucket.get_blob("doomed") is not None
    bucket.blob("doomed").delete(if_generation_match=live, retry=None)
    assert bucket.get_blob("doomed") is None
    with pytest.raises(NotFound):
        bucket.blob("doomed").delete(if_generation_match=live, retry=None)


def test_requests_without_preconditions_behave_as_before(bucket):
    upload(bucket.blob("plain"), b"v1", False)
    upload(bucket.blob("plain"), BIG, True)
    assert bucket.blob("plain").download_as_bytes() == BIG
    bucket.blob("plain").delete(retry=None)
    with pytest.raises(NotFound):
        bucket.blob("plain").delete(retry=None)
