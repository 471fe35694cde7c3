#!/usr/bin/env bash
# The README's "Using it" walk-through, in order, on a fresh data directory.
# Usage: scripts/walkthrough.sh ZTSIM_COMMAND DATA_DIR
# tests/cli/test_cli_walkthrough.py runs it and checks that the README's first "Using it"
# block lists the same commands: every line below that starts with "ztsim " is one of them.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 ZTSIM_COMMAND DATA_DIR" >&2
    exit 2
fi
ZTSIM_BIN=$1
export ZTSIM_DATA_DIR=$2
ztsim() { "$ZTSIM_BIN" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# ICCID with its Luhn check digit (ITU-T E.118): digits from the right, every second doubled.
luhn() {
    local body=$1 sum=0 i d double=1
    for ((i = ${#body} - 1; i >= 0; i--)); do
        d=${body:i:1}
        if ((double)); then
            d=$((d * 2))
            ((d > 9)) && d=$((d - 9))
        fi
        sum=$((sum + d))
        double=$((1 - double))
    done
    echo "$body$(((10 - sum % 10) % 10))"
}
hex16() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# A small vendor batch: 3 physical SIMs and 2 eSIM profiles (test PLMN 001/01).
stock() {
    local first=$1 count=$2 n
    echo "ICCID,IMSI,Ki,OPc,MSISDN"
    for ((n = first; n < first + count; n++)); do
        printf '%s,00101%010d,%s,%s,4917000%05d\n' \
            "$(luhn "$(printf '8944000000000%05d' "$n")")" "$n" "$(hex16)" "$(hex16)" "$n"
    done
}
stock 1 3 >vendor-batch.csv
stock 11 2 >esim-batch.csv
hex16 >gateway-secret.txt
printf 'ads.example\ntracker.example\n' >ads.txt

ztsim init --org-name Acme --slug acme
ztsim sims import vendor-batch.csv --kind physical
ztsim sims import esim-batch.csv --kind esim
ztsim sims list --state stock
ztsim identities create --name "Ann Lee" --email ann@example.test
ztsim identities create --name "Bo Chen" --email bo@example.test
ztsim identities list
ztsim groups create Sales
ztsim groups add Sales ann@example.test "Bo Chen"
ztsim sims assign 8944000000000000019 --identity ann@example.test
ztsim sims activate 8944000000000000019
ztsim sims suspend 8944000000000000019 --reason "lost phone"
ztsim sims resume 8944000000000000019 --reason "found it"
ztsim tokens create --role operator --name ops
ztsim tokens list
ztsim tokens revoke ops
ztsim esim order --group Sales
ztsim esim pack --group Sales -o sales-pack.zip
ztsim aka hn-key create --id 1 --profile A
ztsim aka vector 8944000000000000019
ztsim pools create 10.45.0.0/16
ztsim gateways create --name pgw-1 --address 127.0.0.1 --apn internet --secret-file gateway-secret.txt
ztsim gateways list
ztsim dns lists add ads --file ads.txt --format domains
ztsim dns rules add block-ads --action block --list ads --group Sales
ztsim dns rules add intranet --action override --domain wiki.corp.example --answer 10.0.0.5
ztsim dns rules move intranet --to 1
ztsim dns rules list
ztsim dns settings set --privacy blocked-only
ztsim policy export -o policy.yaml
ztsim policy apply policy.yaml --yes
ztsim policy explain ann@example.test --plane dns --target ads.example
ztsim risk set --approval-required --cooling-off 24h --detector twin_session=suspend
ztsim swaps list --state pending
ztsim api-clients create --name bank-idp --scope sim-swap:check
