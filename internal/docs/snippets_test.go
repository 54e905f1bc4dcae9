package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// fence finds the Go code blocks of a markdown file; packageClause the
// package clause a block must have.
var (
	fence         = regexp.MustCompile("(?ms)^```go\n(.*?)^```")
	packageClause = regexp.MustCompile(`(?m)^package \w+$`)
)

// TestSnippetsCompile type-checks every Go code block of README.md and
// docs/*.md with go vet, each on its own: every block is a complete file
// (package clause and imports), so that a reader can copy it as it is.
func TestSnippetsCompile(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append(docs, filepath.Join(root, "README.md"))
	n := 0
	for _, doc := range docs {
		md, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range fence.FindAllSubmatch(md, -1) {
			n++
			src := string(m[1])
			name := filepath.Base(doc) + " block " + strconv.Itoa(i+1)
			if !packageClause.MatchString(src) {
				t.Errorf("%s: does not start with a package clause; make it a complete file, imports included", name)
				continue
			}
			// A directory whose name starts with "_" is invisible to ./...
			// patterns, so a leftover never joins the build.
			dir, err := os.MkdirTemp(filepath.Join(root, "internal", "docs"), "_snippet")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			if err := os.WriteFile(filepath.Join(dir, "snippet.go"), []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("go", "vet", "./"+filepath.Base(dir))
			cmd.Dir = filepath.Join(root, "internal", "docs")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s does not build: %v\n%s", name, err, out)
			}
		}
	}
	if n == 0 {
		t.Fatal("no Go snippet found: the glob or the fence pattern is wrong")
	}
	t.Logf("%d snippets built", n)
}
