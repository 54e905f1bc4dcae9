//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"go.uber.org/zap"

	"github.com/regentkv/regent/kv"
)

// A linearizability run: clients each on their own Store do random
// operations on a few keys for a while, every value written unique, and
// porcupine checks that the history has a linearization that a single
// register per key would produce.

const linDuration = 12 * time.Second

// linWorkload is a mix of operations: weights in percent of get, put,
// create, compare-and-swap, compare-and-delete and delete.
type linWorkload struct {
	name    string
	clients int
	keys    int
	weights [6]int
	faults  bool // server restarts during the run
	// cluster: a 3-member cluster, clients spread over its members; each
	// fault kills one member (the cluster's leader half the time) and
	// restarts it on its data.
	cluster bool
}

var linWorkloads = []linWorkload{
	// A bit of everything on a few keys.
	{name: "steady", clients: 4, keys: 3, weights: [6]int{40, 18, 10, 17, 5, 10}},
	// One key fought over by creates, swaps and deletes: the races between
	// a compare-and-swap's read and its write that found ZooKeeper's ABA
	// and stale-refusal bugs.
	{name: "contended", clients: 3, keys: 1, weights: [6]int{30, 1, 24, 30, 5, 10}},
	{name: "server-restarts", clients: 4, keys: 3, weights: [6]int{40, 18, 10, 17, 5, 10}, faults: true},
	{name: "member-loss", clients: 6, keys: 3, weights: [6]int{40, 18, 10, 17, 5, 10}, faults: true, cluster: true},
}

func TestLinearizability(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b, func(t *testing.T) {
			for _, w := range linWorkloads {
				t.Run(w.name, func(t *testing.T) {
					forEachSeed(t, func(t *testing.T, seed uint64, rng *rand.Rand) {
						linearizabilityRun(t, b, w, rng)
					})
				})
			}
		})
	}
}

type opKind int

const (
	opGet       opKind = iota
	opPut              // Put
	opCreate           // AtomicPut with a nil previous
	opCAS              // AtomicPut with a previous pair
	opCASDelete        // AtomicDelete
	opDelete           // Delete
)

var opNames = [...]string{"get", "put", "create", "cas", "cas-delete", "delete"}

// linInput is an operation as called. Prev is the value of the version a
// compare-and-swap names: values are unique, so a value identifies the
// version that holds it.
type linInput struct {
	Op    opKind
	Key   string
	Value string
	Prev  string
}

type outcome int

const (
	outOK       outcome = iota
	outNotFound         // kv.ErrKeyNotFound
	outExists           // kv.ErrKeyExists
	outModified         // kv.ErrKeyModified
	outUnknown          // the write may or may not have been applied
	outFailed           // a failure that says the write was not applied (not sent)
)

var outcomeNames = [...]string{"ok", "not-found", "exists", "modified", "unknown", "failed"}

type linOutput struct {
	Outcome outcome
	Found   bool   // get
	Value   string // get
}

// register is the state of one key: absent, or holding Value.
type register struct {
	Present bool
	Value   string
}

// linModel is a register per key. A write with an unknown outcome leads
// to both states: applied and not.
var linModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(linInput).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() []any { return []any{register{}} },
	Step: func(state, input, output any) []any {
		st, in, out := state.(register), input.(linInput), output.(linOutput)
		written := register{Present: true, Value: in.Value}
		gone := register{}
		maybe := func(applies bool, after register) []any {
			switch {
			case out.Outcome == outUnknown && applies:
				return []any{st, after}
			case out.Outcome == outUnknown, out.Outcome == outFailed:
				return []any{st}
			}
			return nil
		}
		switch in.Op {
		case opGet:
			if out.Found == st.Present && (!st.Present || out.Value == st.Value) {
				return []any{st}
			}
			return nil
		case opPut:
			if out.Outcome == outOK {
				return []any{written}
			}
			return maybe(true, written) // failed: no effect; unknown: either
		case opCreate:
			switch out.Outcome {
			case outOK:
				if !st.Present {
					return []any{written}
				}
			case outExists:
				if st.Present {
					return []any{st}
				}
			}
			return maybe(!st.Present, written)
		case opCAS, opCASDelete:
			after := written
			if in.Op == opCASDelete {
				after = gone
			}
			match := st.Present && st.Value == in.Prev
			switch out.Outcome {
			case outOK:
				if match {
					return []any{after}
				}
			case outModified:
				if st.Present && !match {
					return []any{st}
				}
			case outNotFound:
				if !st.Present {
					return []any{st}
				}
			}
			return maybe(match, after)
		case opDelete:
			switch out.Outcome {
			case outOK:
				if st.Present {
					return []any{gone}
				}
			case outNotFound:
				if !st.Present {
					return []any{st}
				}
			}
			return maybe(st.Present, gone)
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		s := fmt.Sprintf("%s(%s", opNames[in.Op], in.Key)
		if in.Op == opPut || in.Op == opCreate || in.Op == opCAS {
			s += "=" + in.Value
		}
		if in.Op == opCAS || in.Op == opCASDelete {
			s += " if " + in.Prev
		}
		s += ") -> "
		if in.Op == opGet {
			if !out.Found {
				return s + "absent"
			}
			return s + out.Value
		}
		return s + outcomeNames[out.Outcome]
	},
	DescribeState: func(state any) string {
		if st := state.(register); st.Present {
			return st.Value
		}
		return "absent"
	},
}

// classify turns a write's error into its outcome: the refusals the
// contract names are definite, and so is an unreachable store or an ended
// ctx without kv.ErrOutcomeUnknown (the write was not sent: checked here
// as having had no effect); anything else may or may not have been
// applied.
func classify(err error) outcome {
	switch {
	case err == nil:
		return outOK
	case errors.Is(err, kv.ErrOutcomeUnknown):
		return outUnknown
	case errors.Is(err, kv.ErrKeyNotFound):
		return outNotFound
	case errors.Is(err, kv.ErrKeyExists):
		return outExists
	case errors.Is(err, kv.ErrKeyModified):
		return outModified
	case errors.Is(err, kv.ErrNotReachable), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled), errors.Is(err, kv.ErrClosed):
		return outFailed
	}
	return outUnknown
}

// linHistory collects operations from concurrent clients.
type linHistory struct {
	mu      sync.Mutex
	start   int64
	ops     []porcupine.Operation
	counts  map[string]int // op/outcome -> count, for the report
	unknown int
}

func (h *linHistory) now() int64 { return mono() - h.start }

func (h *linHistory) add(client int, in linInput, call int64, out linOutput, ret int64, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := opNames[in.Op]
	if in.Op == opGet {
		if err != nil {
			h.counts[name+"/error"]++
			return // a failed read has no effect: nothing to check
		}
	} else {
		name += "/" + outcomeNames[out.Outcome]
		if out.Outcome == outUnknown {
			// It may take effect at any time after it was sent.
			ret = math.MaxInt64
			h.unknown++
		}
	}
	h.counts[name]++
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: errString(err)})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func linearizabilityRun(t *testing.T, backend string, w linWorkload, rng *rand.Rand) {
	tl := newTimeline(t)
	var srv *server
	if w.cluster {
		srv = startCluster(t, backend)
	} else {
		srv = startServer(t, backend)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stores := make([]kv.Store, w.clients)
	for i := range stores {
		s, err := srv.clientFor(i).open(ctx, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
		defer func() { _ = s.Close() }()
	}
	prefix := fmt.Sprintf("chaos/lin/%08x", rng.Uint32())
	keys := make([]string, w.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/k%d", prefix, i)
	}
	h := &linHistory{start: mono(), counts: map[string]int{}}
	deadline := time.Now().Add(linDuration)
	seeds := make([]uint64, w.clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() { linClient(ctx, i, s, keys, w.weights, rand.New(rand.NewPCG(seeds[i], uint64(i))), h, deadline) })
	}
	if w.faults {
		// Two to three server restarts, spread over the run.
		n := 2 + rng.IntN(2)
		for i := range n {
			pause(time.Duration(float64(linDuration) / float64(n+1) * (0.5 + rng.Float64()*0.5)))
			if time.Now().After(deadline.Add(-time.Second)) {
				break
			}
			down := time.Duration(200+rng.IntN(1300)) * time.Millisecond
			tl.say("restart %d of %d", i+1, n)
			victim := 0
			if w.cluster {
				leader := srv.storeLeader(t) // waits for a healthy cluster too
				victim = rng.IntN(len(srv.members))
				if rng.IntN(2) == 0 {
					victim = leader
				}
			}
			srv.bounceMember(t, tl, victim, down)
		}
	}
	wg.Wait()
	tl.say("history: %d operations, %d with an unknown outcome; %v", len(h.ops), h.unknown, h.counts)
	t.Logf("%s: %d operations (%d writes with an unknown outcome): %v", backend, len(h.ops), h.unknown, sortedCounts(h.counts))
	if len(h.ops) < 100 {
		t.Fatalf("only %d operations recorded: the clients barely ran", len(h.ops))
	}
	model := linModel.ToModel()
	res, info := porcupine.CheckOperationsVerbose(model, h.ops, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		return
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within 2 minutes (%d operations, %d unknown outcomes)", len(h.ops), h.unknown)
	}
	dir, err := os.MkdirTemp("", "regent-chaos-lin-")
	if err == nil {
		path := filepath.Join(dir, "history.html")
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("visualization of the history: %s", path)
		}
	}
	t.Errorf("%s: the history is not linearizable (%d operations). Longest partial linearizations per key:\n%s",
		backend, len(h.ops), describePartial(model, info, h.ops))
}

// describePartial lists, for each key whose history could not be
// linearized, the end of the longest prefix that could and the first
// operations that could not be placed after it.
func describePartial(model porcupine.Model, info porcupine.LinearizationInfo, history []porcupine.Operation) string {
	type id struct {
		client int
		call   int64
	}
	parts := model.Partition(history)
	var b strings.Builder
	for i, part := range info.PartialLinearizationsOperations() {
		var longest []porcupine.Operation
		for _, l := range part {
			if len(l) > len(longest) {
				longest = l
			}
		}
		if i >= len(parts) || len(longest) == len(parts[i]) || len(longest) == 0 {
			continue // this key's history is linearizable
		}
		placed := map[id]bool{}
		for _, op := range longest {
			placed[id{op.ClientId, op.Call}] = true
		}
		var rest []porcupine.Operation
		for _, op := range parts[i] {
			if !placed[id{op.ClientId, op.Call}] {
				rest = append(rest, op)
			}
		}
		sort.Slice(rest, func(a, c int) bool { return rest[a].Call < rest[c].Call })
		fmt.Fprintf(&b, "  key %s: %d of %d ops linearized; the last ones:\n", longest[0].Input.(linInput).Key, len(longest), len(parts[i]))
		for _, op := range longest[max(0, len(longest)-8):] {
			fmt.Fprintf(&b, "    client %d [%d, %d] %s %s\n", op.ClientId, op.Call, op.Return, model.DescribeOperation(op.Input, op.Output), op.Metadata)
		}
		fmt.Fprintf(&b, "  then, not placed (by call time):\n")
		for _, op := range rest[:min(len(rest), 10)] {
			fmt.Fprintf(&b, "    client %d [%d, %d] %s %s\n", op.ClientId, op.Call, op.Return, model.DescribeOperation(op.Input, op.Output), op.Metadata)
		}
	}
	return b.String()
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// linClient does operations until deadline. It remembers the last pair it
// read of each key, which its compare-and-swaps name.
func linClient(ctx context.Context, id int, s kv.Store, keys []string, weights [6]int, rng *rand.Rand, h *linHistory, deadline time.Time) {
	var cum [6]int
	total := 0
	for i, w := range weights {
		total += w
		cum[i] = total
	}
	last := map[string]*kv.KVPair{}
	seq := 0
	for time.Now().Before(deadline) {
		key := keys[rng.IntN(len(keys))]
		seq++
		value := fmt.Sprintf("c%d-%d", id, seq)
		in := linInput{Key: key, Value: value}
		r := rng.IntN(total)
		switch {
		case r < cum[opGet]:
			in.Op = opGet
		case r < cum[opPut]:
			in.Op = opPut
		case r < cum[opCreate]:
			in.Op = opCreate
		case r < cum[opCAS] && last[key] != nil:
			in.Op, in.Prev = opCAS, string(last[key].Value)
		case r < cum[opCASDelete] && last[key] != nil:
			in.Op, in.Prev = opCASDelete, string(last[key].Value)
		case r < cum[opCASDelete]:
			in.Op = opGet // nothing read yet to compare against
		default:
			in.Op = opDelete
		}
		octx, cancel := context.WithTimeout(ctx, opTimeout)
		call := h.now()
		var out linOutput
		var err error
		switch in.Op {
		case opGet:
			var p *kv.KVPair
			p, err = s.Get(octx, key, &kv.ReadOptions{Consistent: true})
			switch {
			case err == nil:
				out.Found, out.Value = true, string(p.Value)
				last[key] = p
			case errors.Is(err, kv.ErrKeyNotFound):
				err = nil
				delete(last, key)
			}
		case opPut:
			err = s.Put(octx, key, []byte(value), nil)
		case opCreate:
			var p *kv.KVPair
			_, p, err = s.AtomicPut(octx, key, []byte(value), nil, nil)
			if err == nil {
				last[key] = p
			}
		case opCAS:
			var p *kv.KVPair
			_, p, err = s.AtomicPut(octx, key, []byte(value), last[key], nil)
			if err == nil {
				last[key] = p
			}
		case opCASDelete:
			_, err = s.AtomicDelete(octx, key, last[key])
		case opDelete:
			err = s.Delete(octx, key)
		}
		ret := h.now()
		cancel()
		if in.Op != opGet {
			out.Outcome = classify(err)
		}
		h.add(id, in, call, out, ret, err)
		if err != nil && (in.Op == opGet || out.Outcome == outUnknown || out.Outcome == outFailed) {
			// The server is likely away: do not pile up operations whose
			// outcome nobody can know.
			pause(50 * time.Millisecond)
		}
	}
}
