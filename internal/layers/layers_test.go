package layers

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/regentkv/regent/"

// allowed names, per package (a path, or a prefix ending in "/..."), the
// module packages its non-test files may import. clock is the one leaf
// every layer may take; internal/poll is a test helper for the exported
// suites. Packages not listed (examples, chaos, internal/testenv) may
// import anything but examples.
var allowed = []struct {
	pkg     string
	imports []string
}{
	{"clock", nil},
	{"clock/clocktest", []string{"clock"}},
	{"kv", nil},
	{"kv/internal/...", []string{"kv", "clock", "kv/internal/..."}},
	{"kv/kvtest", []string{"kv", "internal/poll"}},
	{"kv/etcd/embedded", nil},
	{"kv/etcd", []string{"kv", "kv/internal/..."}},
	{"kv/consul", []string{"kv", "kv/internal/..."}},
	{"kv/zookeeper", []string{"kv", "kv/internal/..."}},
	{"kv/memory", []string{"kv", "kv/internal/...", "clock"}},
	{"kv/kvurl", []string{"kv", "kv/etcd", "kv/consul", "kv/zookeeper", "kv/memory"}},
	{"lock", []string{"kv", "clock"}},
	{"election", []string{"kv", "lock", "clock"}},
	{"election/electiontest", []string{"election", "lock", "kv", "kv/kvtest", "internal/poll", "clock"}},
	{"informer", []string{"kv", "clock"}},
	{"informer/informertest", []string{"informer", "kv", "internal/poll", "clock"}},
	{"workqueue", []string{"clock"}},
	{"workqueue/prommetrics", []string{"workqueue"}},
	{"controller", []string{"kv", "lock", "election", "informer", "workqueue", "workqueue/prommetrics", "clock"}},
	{"discovery", []string{"kv", "informer"}},
	{"internal/poll", nil},
}

func TestImportsPointDown(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if rel == "bench" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" {
			return filepath.SkipDir // bench is a module of its own
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		checked++
		for _, imp := range pkg.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if strings.HasPrefix(dep, "examples") && !strings.HasPrefix(rel, "examples") {
				t.Errorf("%s imports %s: nothing imports examples", rel, dep)
			}
			if rule, ok := ruleFor(rel); ok && !matches(rule, dep) {
				t.Errorf("%s imports %s: it may import only %v", rel, dep, rule)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked %d packages: the walk missed the module", checked)
	}
}

func ruleFor(pkg string) ([]string, bool) {
	for _, a := range allowed {
		if a.pkg == pkg || (strings.HasSuffix(a.pkg, "/...") && strings.HasPrefix(pkg, strings.TrimSuffix(a.pkg, "..."))) {
			return a.imports, true
		}
	}
	return nil, false
}

func matches(rule []string, dep string) bool {
	return slices.ContainsFunc(rule, func(r string) bool {
		if p, ok := strings.CutSuffix(r, "/..."); ok {
			return dep == p || strings.HasPrefix(dep, p+"/")
		}
		return r == dep
	})
}
