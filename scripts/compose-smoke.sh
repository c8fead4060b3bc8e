#!/usr/bin/env bash
# Builds the image, brings up compose.yaml (PostgreSQL and two ladder
# nodes), and checks what the stack promises: both nodes ready (database
# and sealed keyring), a message accepted by node 1 is read back through
# node 2, and the keyring on the shared volume is sealed. Takes the stack
# down again (volumes too) whatever happens.
#
# Needs a Docker daemon with the compose plugin, curl and openssl. `.ci/run`
# runs it when the CI machine has a daemon, and says it skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

secrets=deploy/secrets
mkdir -p "$secrets"
chmod 700 "$secrets"
[ -s "$secrets/ladder_kek" ] || openssl rand -base64 32 >"$secrets/ladder_kek"
[ -s "$secrets/postgres_password" ] || openssl rand -hex 16 >"$secrets/postgres_password"
printf 'postgres://ladder:%s@postgres:5432/ladder\n' "$(cat "$secrets/postgres_password")" >"$secrets/database_url"
# The nodes run as uid 10001 and read the secrets as files.
chmod 644 "$secrets"/*

down() { docker compose down --volumes --remove-orphans >/dev/null 2>&1 || true; }
trap down EXIT

docker compose up --detach --build --wait --wait-timeout 300

for port in 7878 7879; do
    ready="$(curl -fsS "http://127.0.0.1:$port/readyz")"
    echo "node on $port: $ready"
    grep -q '"keyring":"ok"' <<<"$ready"
done

# The demo tenant's sender key, shown once in node 1's banner.
key="$(docker compose logs --no-log-prefix node-1 | awk '$1 == "sender" {print $2; exit}')"
[ -n "$key" ] || { echo "no sender key in node-1's banner" >&2; exit 1; }

id() { grep -o "\"id\":\"$1_[^\"]*\"" | head -1 | cut -d'"' -f4; }
recipient="$(curl -fsS http://127.0.0.1:7878/v1/recipients \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"external_id":"compose-smoke","email":"smoke@example.com","phone":"+15550100000"}' | id rcp)"
message="$(curl -fsS http://127.0.0.1:7878/v1/messages \
    -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -H "Idempotency-Key: compose-smoke-$(date +%s)" \
    -d "{\"recipient\":\"$recipient\",\"class\":\"transactional\",\"body\":\"hello from the compose smoke test\"}" | id msg)"
[ -n "$message" ] || { echo "node-1 did not accept the message" >&2; exit 1; }
curl -fsS "http://127.0.0.1:7879/v1/messages/$message" -H "Authorization: Bearer $key" >/dev/null
echo "message $message accepted by node-1, read through node-2"

docker compose exec -T node-1 sh -c 'grep -q "\"sealed\": 1" /var/lib/ladder/keys/keyring.json'
echo "keyring on the shared volume is sealed"
echo "compose smoke: ok"
