#!/bin/sh
# ember-entrypoint ROLE [ember start flags...]: run a head or a worker in the foreground.
#
# ROLE is "head" or "worker" (default: $EMBER_ROLE, else head). Environment:
#   EMBER_TOKEN_FILE           the cluster token file (default /run/secrets/ember_token);
#                              the head uses this token instead of a random one
#   EMBER_HEAD_ADDRESS         worker: the head's HOST:PORT (e.g. ember-head:6379)
#   EMBER_PORT                 head: the control service's port (default 6379)
#   EMBER_NODE_IP_ADDRESS      the address other nodes reach this one at
#                              (default: the address the container's hostname resolves to)
#   EMBER_NUM_CPUS, EMBER_NUM_GPUS, EMBER_OBJECT_STORE_MEMORY (bytes),
#   EMBER_RESOURCES (JSON), EMBER_LABELS (k=v,k=v): as the ember start flags
# `ember start --block` stays in the foreground and stops its daemons on SIGTERM.
set -eu

role="${EMBER_ROLE:-head}"
case "${1:-}" in
  head|worker) role="$1"; shift ;;
esac

token_file="${EMBER_TOKEN_FILE:-/run/secrets/ember_token}"
if [ ! -s "$token_file" ]; then
  echo "ember-entrypoint: no cluster token in $token_file. Create one (for example" \
       "'python3 -c \"import secrets; print(secrets.token_hex(32))\" > ember_token')" \
       "and mount it there, or set EMBER_TOKEN_FILE." >&2
  exit 2
fi

ip="${EMBER_NODE_IP_ADDRESS:-}"
if [ -z "$ip" ]; then
  ip="$(python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))')"
fi

set -- --node-ip-address "$ip" --token-file "$token_file" --block "$@"
[ -n "${EMBER_NUM_CPUS:-}" ] && set -- --num-cpus "$EMBER_NUM_CPUS" "$@"
[ -n "${EMBER_NUM_GPUS:-}" ] && set -- --num-gpus "$EMBER_NUM_GPUS" "$@"
[ -n "${EMBER_OBJECT_STORE_MEMORY:-}" ] && set -- --object-store-memory "$EMBER_OBJECT_STORE_MEMORY" "$@"
[ -n "${EMBER_RESOURCES:-}" ] && set -- --resources "$EMBER_RESOURCES" "$@"
[ -n "${EMBER_LABELS:-}" ] && set -- --labels "$EMBER_LABELS" "$@"

case "$role" in
  head)
    exec ember start --head --port "${EMBER_PORT:-6379}" "$@"
    ;;
  worker)
    if [ -z "${EMBER_HEAD_ADDRESS:-}" ]; then
      echo "ember-entrypoint: a worker needs EMBER_HEAD_ADDRESS=HOST:PORT of the head." >&2
      exit 2
    fi
    exec ember start --address "$EMBER_HEAD_ADDRESS" "$@"
    ;;
  *)
    echo "ember-entrypoint: the role is 'head' or 'worker', not '$role'." >&2
    exit 2
    ;;
esac
