"""Object storage for Nameko services: S3 (boto3) when an endpoint is configured, a local directory otherwise.

Both stores have the same small interface, `put(key, body) -> key`: a retry with the same key
overwrites the object, it never makes a second one.

boto3 is a blocking library; under `nameko run` (eventlet monkey-patches the socket module before
botocore imports it) a slow upload blocks its own worker only.
"""

import logging
from pathlib import Path

from nameko.extensions import DependencyProvider

log = logging.getLogger(__name__)


def setting(config: dict, *names, default=None):
    """The first of `names` set (non-empty) in the service's config."""
    for name in names:
        value = config.get(name)
        if value not in (None, ""):
            return value
    return default


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


def make_store(config: dict) -> S3Store | LocalDirectoryStore:
    endpoint = setting(config, "S3_ENDPOINT_URL")
    if not endpoint:
        return LocalDirectoryStore(setting(config, "LOCAL_STORE_DIR", default="objects"))

    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=setting(config, "S3_REGION", "AWS_DEFAULT_REGION", default="us-east-1"),
        # None: boto3 falls back to its own chain (AWS_ACCESS_KEY_ID, ~/.aws, instance roles...)
        aws_access_key_id=setting(config, "S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=setting(config, "S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
        config=Config(
            connect_timeout=float(setting(config, "S3_CONNECT_TIMEOUT", default=5)),
            read_timeout=float(setting(config, "S3_READ_TIMEOUT", default=30)),
            retries={"mode": "standard", "max_attempts": int(setting(config, "S3_MAX_ATTEMPTS", default=3))},
            s3={"addressing_style": "path"},  # MinIO and test servers have no per-bucket DNS names
        ),
    )
    return S3Store(client, setting(config, "S3_BUCKET", default="payloads"))


class Storage(DependencyProvider):
    """Injects the service's object store; the client is created (and the bucket made) once, at setup."""

    def setup(self):
        self.store = make_store(self.container.config)
        self.store.ensure_bucket()

    def get_dependency(self, worker_ctx):
        return self.store
