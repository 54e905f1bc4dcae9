package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun covers the life of the results directory: a family without its
// file is skipped with a message, a garbled line is reported but costs only
// itself, the chart appears once the file does, and drawing twice gives the
// same bytes (so `make plots` leaves git clean).
func TestRun(t *testing.T) {
	in, out := t.TempDir(), filepath.Join(t.TempDir(), "img")
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(in, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etcd.txt", samples["etcd"]+"BenchmarkEtcdPaired/Get-2 10 fast ns/op\n")
	var log bytes.Buffer
	if err := run(in, out, &log); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{"informer.txt missing", "informer.svg not drawn", "etcd: skipped: line 7:", "etcd.txt -> "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
	first, err := os.ReadFile(filepath.Join(out, "etcd.svg"))
	if err != nil {
		t.Fatalf("etcd.svg not written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "informer.svg")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("informer.svg: %v, want it absent", err)
	}

	write("informer.txt", samples["informer"])
	log.Reset()
	if err := run(in, out, &log); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "informer.svg")); err != nil {
		t.Errorf("informer.svg not drawn once its results exist: %v\n%s", err, log.String())
	}
	again, err := os.ReadFile(filepath.Join(out, "etcd.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Error("etcd.svg changed between two runs on the same input")
	}
}

func TestRunFailsOnUselessResults(t *testing.T) {
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "queue.txt"), []byte("PASS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := run(in, t.TempDir(), &bytes.Buffer{})
	if !errors.Is(err, errNoData) || !strings.Contains(err.Error(), "queue.txt") {
		t.Errorf("run = %v, want errNoData naming queue.txt", err)
	}
}
