package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regentkv/regent/internal/testenv"
)

// TestBinary builds the command and runs it as an operator would, against
// an embedded etcd: the store from REGENT_STORE, statuses for scripts, a
// copy with its progress bar on standard error.
func TestBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "regent")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ep := strings.TrimPrefix(testenv.Etcd(t)[0], "http://")
	store := fmt.Sprintf("etcd://%s/bin-%d", ep, time.Now().UnixNano())
	regent := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "REGENT_STORE="+store)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case err == nil:
			return out.String(), errOut.String(), 0
		case errors.As(err, &exit):
			return out.String(), errOut.String(), exit.ExitCode()
		}
		t.Fatalf("run %v: %v", args, err)
		return "", "", 0
	}
	if _, stderr, code := regent("", "put", "cfg/a", "1"); code != 0 {
		t.Fatalf("put: %d %s", code, stderr)
	}
	if _, _, code := regent("line one\nline two\n", "put", "cfg/b", "-"); code != 0 {
		t.Fatal("put from stdin")
	}
	if out, _, _ := regent("", "get", "cfg/b", "-o", "json"); !strings.Contains(out, `"value":"line one\nline two\n"`) {
		t.Fatalf("get -o json: %q", out)
	}
	if _, stderr, code := regent("", "get", "cfg/missing"); code != exitNotFound || !strings.Contains(stderr, "not found") {
		t.Fatalf("get of a missing key: exit %d, %q", code, stderr)
	}
	if out, _, code := regent("", "ls", "cfg", "--tree", "--keys-only"); code != 0 || out != "cfg/\n  a\n  b\n" {
		t.Fatalf("ls --tree: %d %q", code, out)
	}
	out, stderr, code := regent("", "copy", store, "memory:", "cfg", "--progress", "always")
	if code != 0 || !strings.Contains(out, "copied 2 keys") || !strings.Contains(stderr, "copy") {
		t.Fatalf("copy: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, _, code := regent("", "diff", store, "memory:", "cfg"); code != exitDiffer {
		t.Fatalf("diff against an empty memory store: exit %d, want %d", code, exitDiffer)
	}
	if out, _, code := regent("", "completion", "zsh"); code != 0 || !strings.Contains(out, "compdef") {
		t.Fatalf("completion zsh: %d %.60q", code, out)
	}
	if out, _, code := regent("", "bench", "--count", "20", "-o", "json"); code != 0 || !strings.Contains(out, `"op":"put"`) || !strings.Contains(out, `"op":"get"`) {
		t.Fatalf("bench: %d %q", code, out)
	}
	if out, _, _ := regent("", "ls", "--keys-only"); strings.Contains(out, "regent-bench") {
		t.Fatalf("bench left its keys: %q", out)
	}
}
