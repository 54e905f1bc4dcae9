#!/usr/bin/env bash
# The fault-injection suite (chaos/, build tag "chaos"): real servers as
# processes that the tests kill, pause and restart under regent clients
# (scripts/servers.sh installs or builds them first). Every scenario is
# seeded and prints its seed:
#   CHAOS_SEED=N    replays seed N (0, the default: a new random seed)
#   CHAOS_SEEDS=K   runs every scenario with K seeds in a row, N to N+K-1
#   CHAOS_BACKENDS  the backends to run on (default etcd,zookeeper,consul)
#   CHAOS_RUN       a -run pattern, e.g. TestElectionSafety/zookeeper
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/servers.sh
source scripts/servers.sh

# Without -race: the race detector runs over every package in make test,
# and here it would report a known data race inside go-zookeeper v1.0.4
# (Conn.lastZxid, written by its receive loop while sendSetWatches reads
# it after a reconnect: go-zookeeper/zk pull request 35, unmerged), which
# server restarts make likely.
go vet -tags chaos ./chaos/
# One seed of every scenario takes about 9 minutes here (2 cores).
timeout=$(( ${CHAOS_SEEDS:-1} * 8 + 10 ))m
go test -tags chaos -count=1 -timeout "$timeout" -v ./chaos/ \
  -run "${CHAOS_RUN:-.}" \
  -chaos.seed="${CHAOS_SEED:-0}" -chaos.seeds="${CHAOS_SEEDS:-1}" \
  -chaos.backends="${CHAOS_BACKENDS:-etcd,zookeeper,consul}" 2>&1 |
  grep --line-buffered -v -e '^=== RUN' -e '^=== PAUSE' -e '^=== CONT'
