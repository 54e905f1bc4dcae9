#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs or builds the real
# servers it needs (scripts/servers.sh), then runs every test with the race
# detector, then vets the bench module and tests its plotting program.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/servers.sh
source scripts/servers.sh

go vet ./...
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go test -race -count=1 -timeout 20m ./...
# The comparison benchmarks are run by `make bench`; here they must build.
(cd bench && go vet ./... && go test -race -count=1 ./cmd/plot/)
