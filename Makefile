GOLANGCI_LINT = go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

.PHONY: demo test chaos lint bench

# Zero installs: the reconciler demo on an in-process etcd.
demo:
	go run ./examples/reconciler

# The whole suite on a fresh machine: installs/builds ZooKeeper and Consul,
# runs every test with -race against real servers.
test:
	./scripts/test.sh

# The fault-injection suite: servers killed, paused and restarted under
# regent clients, seeded (CHAOS_SEED=N replays, CHAOS_SEEDS=K runs K seeds).
chaos:
	./scripts/chaos.sh

lint:
	$(GOLANGCI_LINT) run ./...
	cd bench && $(GOLANGCI_LINT) run ./...

bench:
	cd bench && go test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.txt

# The charts in docs/img from the outputs in bench/results (see
# docs/benchmarks.md for the command behind each file).
.PHONY: plots
plots:
	cd bench && go run ./cmd/plot -in results -out ../docs/img
