"""Storage against a real S3 API (moto's server mode over HTTP) and the local-directory default."""

import pytest

from common.settings import StorageSettings
from common.storage import LocalDirectoryStore, S3Store, make_store


def test_the_bucket_is_created_when_missing_and_the_object_holds_the_bytes(s3):
    client, settings = s3
    store = make_store(StorageSettings.model_validate(settings))
    assert isinstance(store, S3Store)

    store.ensure_bucket()
    key = store.put("payloads/m-1.json", b'{"a": 1}')

    assert key == "payloads/m-1.json"
    assert client.get_object(Bucket=settings["S3_BUCKET"], Key=key)["Body"].read() == b'{"a": 1}'


def test_a_retry_with_the_same_key_overwrites(s3):
    client, settings = s3
    store = make_store(StorageSettings.model_validate(settings))
    store.ensure_bucket()
    store.ensure_bucket()  # an existing bucket is fine

    store.put("payloads/m-2.json", b"first")
    store.put("payloads/m-2.json", b"second")

    listing = client.list_objects_v2(Bucket=settings["S3_BUCKET"])
    assert [item["Key"] for item in listing["Contents"]] == ["payloads/m-2.json"]
    assert (
        client.get_object(Bucket=settings["S3_BUCKET"], Key="payloads/m-2.json")["Body"].read() == b"second"
    )


def test_with_no_endpoint_objects_are_files_in_a_local_directory(tmp_path):
    store = make_store(StorageSettings(S3_ENDPOINT_URL="", LOCAL_STORE_DIR=str(tmp_path / "objects")))
    assert isinstance(store, LocalDirectoryStore)
    store.ensure_bucket()

    store.put("payloads/m-3.json", b"[1, 2]")

    assert (tmp_path / "objects" / "payloads" / "m-3.json").read_bytes() == b"[1, 2]"
    with pytest.raises(ValueError, match="leaves the store"):
        store.put("../outside.json", b"{}")
