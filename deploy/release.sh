#!/usr/bin/env bash
# release.sh IMAGE: deploy IMAGE to the inactive slot of the compose stack and roll it out.
#
#   1. asks Switchyard's admin API which slot is inactive (GET /inactive-slot);
#   2. records APP_<SLOT>_IMAGE=IMAGE in the compose project's .env, so that a later
#      `docker compose up` keeps it, and starts that slot: docker compose up -d app-<slot>;
#   3. runs `switchyard rollout --wait`, which follows the canary to its end;
#   4. exits with the rollout's status: 0 succeeded, 3 rolled back or aborted, 1 when the admin
#      API cannot be reached (2: wrong arguments).
#
# Environment:
#   SWITCHYARD_ADMIN        the admin API (default http://127.0.0.1:8081)
#   SWITCHYARD_TOKEN        its bearer token (default: the compose folder's secrets/switchyard-token)
#   SWITCHYARD_COMPOSE_DIR  the folder of docker-compose.yml and .env (default: this script's)
#   SWITCHYARD              the switchyard command (default: `switchyard` when on PATH, else
#                           `docker compose exec -T switchyard switchyard`)
set -euo pipefail

usage() {
    echo "usage: $(basename "$0") IMAGE    deploy IMAGE to the inactive slot and roll it out" >&2
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0" >&2
    exit 2
}

if [ $# -ne 1 ] || [ -z "$1" ] || [[ "$1" == -* ]]; then
    usage
fi
image=$1
admin=${SWITCHYARD_ADMIN:-http://127.0.0.1:8081}
admin=${admin%/}
compose_dir=${SWITCHYARD_COMPOSE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}

# 1. The slot to deploy to.
if ! slot=$(curl -fsS --max-time 10 "$admin/inactive-slot"); then
    echo "release: cannot reach the Switchyard admin API at $admin (set SWITCHYARD_ADMIN)" >&2
    exit 1
fi
slot=$(printf '%s' "$slot" | tr -d '[:space:]')
if ! [[ "$slot" =~ ^[a-z0-9_-]+$ ]]; then
    echo "release: unexpected answer from $admin/inactive-slot: '$slot'" >&2
    exit 1
fi
echo "release: the inactive slot is $slot (admin $admin)"

# 2. Record the image for the slot's service and start it.
var="APP_$(printf '%s' "$slot" | tr 'a-z-' 'A-Z_')_IMAGE"
env_file="$compose_dir/.env"
tmp=$(mktemp "$compose_dir/.env.XXXXXX")
trap 'rm -f "$tmp"' EXIT
if [ -f "$env_file" ]; then
    grep -v "^${var}=" "$env_file" >"$tmp" || true
fi
printf '%s=%s\n' "$var" "$image" >>"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$env_file"
echo "release: $var=$image recorded in $env_file; docker compose up -d app-$slot"
# The variable is passed too, so that one exported in this shell cannot override the file.
(cd "$compose_dir" && env "$var=$image" docker compose up -d "app-$slot")

# 3. Roll it out and follow it.
token=${SWITCHYARD_TOKEN:-}
if [ -z "$token" ] && [ -r "$compose_dir/secrets/switchyard-token" ]; then
    token=$(tr -d '[:space:]' <"$compose_dir/secrets/switchyard-token")
fi
cli_dir=$PWD
if [ -n "${SWITCHYARD:-}" ]; then
    read -r -a cli <<<"$SWITCHYARD"
    token_args=()
elif command -v switchyard >/dev/null 2>&1; then
    cli=(switchyard)
    token_args=()
else
    # Inside the proxy's container; the environment does not reach it, so the token is an
    # argument there.
    cli=(docker compose exec -T switchyard switchyard)
    cli_dir=$compose_dir
    token_args=()
    [ -z "$token" ] || token_args=(--token "$token")
fi
echo "release: rolling out $slot ($image), following it: ${cli[*]} rollout --wait"
status=0
(cd "$cli_dir" && SWITCHYARD_TOKEN=$token "${cli[@]}" rollout --admin "$admin" "${token_args[@]}" --wait) ||
    status=$?

# 4. The rollout's result is the script's.
case $status in
    0) echo "release: $image is live on $slot" ;;
    3) echo "release: the rollout of $image on $slot was rolled back or aborted" >&2 ;;
    *) echo "release: the rollout of $image on $slot failed (exit $status)" >&2 ;;
esac
exit "$status"
