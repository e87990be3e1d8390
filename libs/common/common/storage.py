"""Object storage for Nameko services: S3 (boto3) when an endpoint is configured, a local directory otherwise.

Both stores have the same small interface, `put(key, body) -> key`: a retry with the same key
overwrites the object, it never makes a second one.

boto3 is a blocking library; under `nameko run` (eventlet monkey-patches the socket module before
botocore imports it) a slow upload blocks its own worker only.
"""

import logging
from pathlib import Path

from nameko.extensions import DependencyProvider

from common.settings import StorageSettings, settings_of

log = logging.getLogger(__name__)


class S3Store:
    def __init__(self, client, bucket: str):
        self.client = client
        self.bucket = bucket

    def ensure_bucket(self):
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            log.info("creating bucket %s", self.bucket)
            self.client.create_bucket(Bucket=self.bucket)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        return key

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


class LocalDirectoryStore:
    """The embedded default: objects are files under `root`, written atomically (rename)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def ensure_bucket(self):
        self.root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, body: bytes, content_type: str = "application/json") -> str:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object key {key!r} leaves the store")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(body)
        partial.replace(path)
        return key

    def describe(self, key: str) -> str:
        return str(self.root / key)


def make_store(settings: StorageSettings) -> S3Store | LocalDirectoryStore:
    if not settings.S3_ENDPOINT_URL:
        return LocalDirectoryStore(settings.LOCAL_STORE_DIR)

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.S3_REGION,
        # None: boto3 falls back to its own chain (AWS_ACCESS_KEY_ID, ~/.aws, instance roles...)
        aws_access_key_id=settings.S3_ACCESS_KEY_ID or None,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY or None,
        config=Config(
            connect_timeout=settings.S3_CONNECT_TIMEOUT,
            read_timeout=settings.S3_READ_TIMEOUT,
            retries={"mode": "standard", "max_attempts": settings.S3_MAX_ATTEMPTS},
            s3={"addressing_style": "path"},  # MinIO and test servers have no per-bucket DNS names
        ),
    )
    return S3Store(client, settings.S3_BUCKET)


class Storage(DependencyProvider):
    """Injects the service's object store; the client is created (and the bucket made) once, at setup."""

    def setup(self):
        self.store = make_store(settings_of(self.container, StorageSettings))
        self.store.ensure_bucket()

    def get_dependency(self, worker_ctx):
        return self.store
