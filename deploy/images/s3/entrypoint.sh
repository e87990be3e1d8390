#!/bin/bash
# S3 on :8333 with one identity, the access key and secret from S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY
# (SeaweedFS reads them as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY); data in /data.
set -euo pipefail
export AWS_ACCESS_KEY_ID=${S3_ACCESS_KEY_ID:?set S3_ACCESS_KEY_ID}
export AWS_SECRET_ACCESS_KEY=${S3_SECRET_ACCESS_KEY:?set S3_SECRET_ACCESS_KEY}
exec weed mini -dir=/data -ip=127.0.0.1 -ip.bind=0.0.0.0 -admin.ui=false -webdav=false \
  ${S3_BUCKET:+-bucket="$S3_BUCKET"} "$@"
