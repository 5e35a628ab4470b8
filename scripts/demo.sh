#!/usr/bin/env bash
# The README demo: the whole promotion story on the embedded default.
#
# In a fresh temporary directory, with no configuration (SQLite log and a
# development signing key under .policyengine/): lint the built-in packs, gate
# an example high-risk card (deny, with reasons), generate two approver keys
# and a trust file, record two signed approvals, gate again (allow), promote,
# verify the whole log and verify the decision's receipt offline.
# Each step prints its command and output; the script exits non-zero as soon
# as a step's exit code is not the expected one.
#
# Usage: scripts/demo.sh          (KEEP=1 keeps the working directory)
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${POLICYENGINE:-}" ]; then
    PE=("$POLICYENGINE")
elif command -v policyengine >/dev/null 2>&1; then
    PE=(policyengine)
else
    PE=("$REPO/.venv/bin/python" -m policyengine)
fi
CARD_SRC="$REPO/examples/cards/credit-risk-scorer.yaml"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/policyengine-demo.XXXXXX")"
if [ "${KEEP:-0}" = "1" ]; then
    echo "working directory kept: $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi
cd "$WORK" || exit 2
unset POLICYENGINE_LOG_URL POLICYENGINE_POLICIES POLICYENGINE_ENV POLICYENGINE_CONFIG GITHUB_STEP_SUMMARY

STEP=0
# step EXPECTED_EXIT DESCRIPTION -- COMMAND...: run, show, check the exit code.
step() {
    local want="$1" what="$2"
    shift 3
    STEP=$((STEP + 1))
    printf '\n== %d. %s\n$ %s\n' "$STEP" "$what" "$*"
    "$@"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        printf '!! step %d: expected exit %d, got %d\n' "$STEP" "$want" "$got" >&2
        exit 1
    fi
    printf -- '-> exit %d, as expected\n' "$got"
}

cp "$CARD_SRC" card.yaml
MODEL=credit-risk-scorer
VERSION=2.3.0
DIGEST="$(sed -n 's/^  artifact_digest: "\(sha256:[0-9a-f]*\)"$/\1/p' card.yaml)"

if [ "${CI:-}" = "true" ]; then
    # Under CI the development key is refused by design: use a throwaway log key.
    step 0 "CI=true: generate a log signing key (the development key is never used in CI)" -- \
        "${PE[@]}" keys generate demo-log --out log-key
    export POLICYENGINE_SIGNING_KEY="$WORK/log-key/demo-log.key"
    LOG_PUB="$WORK/log-key/demo-log.pub"
else
    unset POLICYENGINE_SIGNING_KEY
    LOG_PUB="$WORK/.policyengine/dev-signing.pub"
fi

step 0 "lint the built-in policy packs" -- "${PE[@]}" check
step 1 "gate $MODEL $VERSION for production: denied, no approvals yet" -- \
    "${PE[@]}" gate card.yaml --to production --receipt deny-receipt.json
step 0 "generate bob's approver key (model-risk)" -- "${PE[@]}" keys generate bob@bank.example --out keys
step 0 "generate carol's approver key (domain-owner)" -- "${PE[@]}" keys generate carol@bank.example --out keys

cat > approvers.yaml <<YAML
# Trust file: who may approve, in which roles, with which public keys.
apiVersion: policyengine/v1
kind: Approvers
approvers:
  - id: bob@bank.example
    roles: [model-risk]
    keys: ["$(cat keys/bob@bank.example.pub)"]
  - id: carol@bank.example
    roles: [domain-owner]
    keys: ["$(cat keys/carol@bank.example.pub)"]
YAML
printf '\n== trust file approvers.yaml\n'
cat approvers.yaml

step 0 "bob approves the artifact as model-risk (signed)" -- \
    "${PE[@]}" approve --model "$MODEL" --version "$VERSION" --digest "$DIGEST" \
    --role model-risk --key keys/bob@bank.example.key --expires 30d --note "validation report MRM-114"
step 0 "carol approves the artifact as domain-owner (signed)" -- \
    "${PE[@]}" approve --model "$MODEL" --version "$VERSION" --digest "$DIGEST" \
    --role domain-owner --key keys/carol@bank.example.key --expires 30d
step 0 "gate again: allowed" -- \
    "${PE[@]}" gate card.yaml --to production --receipt allow-receipt.json
step 0 "promote to production: justified by the allow in the log" -- \
    "${PE[@]}" promote --model "$MODEL" --version "$VERSION" --digest "$DIGEST" --to production
step 0 "verify the whole audit log (chain, tree, checkpoint signatures)" -- "${PE[@]}" audit verify
step 0 "verify the allow decision's receipt offline, with only the log's public key" -- \
    "${PE[@]}" audit receipt verify allow-receipt.json --key "$LOG_PUB"

printf '\ndemo complete: deny, two signed approvals, allow, promotion, verified log and receipt\n'
