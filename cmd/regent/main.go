// Command regent is one operator's tool for the stores regent runs on:
// etcd, Consul, ZooKeeper (and memory, for trials). It reads and writes
// keys, follows them, shows who leads an election, copies a prefix from
// one backend to another (then follows it live, for a migration's
// cut-over) and compares two stores.
//
//	go install github.com/regentkv/regent/cmd/regent@latest
//	export REGENT_STORE=etcd://127.0.0.1:2379
//	regent ls config/
//	regent copy etcd://old:2379 consul://new:8500 config/ --follow
//
// Every command takes the store as a URL (see package kv/kvurl), from
// --store or REGENT_STORE; TLS and credentials come from flags or their
// REGENT_* variables. Output is a table, or JSON with -o json; the exit
// status says what went wrong (see exitCodes in errors.go and
// `regent help exit-codes`).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	stop()
	os.Exit(code)
}
