#!/bin/bash
# The image's configuration plus the default user from the environment, written where the container
# may write (/tmp: a tmpfs when the root file system is read-only), then the server in its place.
set -euo pipefail
config=/tmp/rabbitmq/rabbitmq.conf
mkdir -p "${config%/*}" "${RABBITMQ_LOG_BASE:-/tmp/rabbitmq/log}"
cp /etc/rabbitmq/rabbitmq.conf "$config"
if [[ -n ${RABBITMQ_DEFAULT_USER:-} ]]; then
  printf 'default_user = %s\ndefault_pass = %s\n' "$RABBITMQ_DEFAULT_USER" "${RABBITMQ_DEFAULT_PASS:?set RABBITMQ_DEFAULT_PASS too}" >>"$config"
fi
export RABBITMQ_CONFIG_FILE=$config
exec "$@"
