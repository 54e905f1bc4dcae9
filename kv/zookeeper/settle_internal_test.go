package zookeeper

import "testing"

// TestSettleLowersTheClaimBelowAMergedHeldChange: a key whose latest read
// merged writes (since below its revision) and lies past the claim keeps
// the batch from claiming a revision in the span it cannot date.
func TestSettleLowersTheClaimBelowAMergedHeldChange(t *testing.T) {
	chs := []change{
		{key: "a", rev: 12, since: 12},
		{key: "b", rev: 20, since: 11}, // read past the claim, merged since 11
	}
	ready, held, claimed := settle(chs, 15, 10, true)
	if claimed != 10 || len(ready) != 0 || len(held) != 2 {
		t.Fatalf("claimed %d, ready %v, held %v; want 10, nothing ready, both held", claimed, ready, held)
	}
	// Exact changes do not lower it.
	chs[1].since = 20
	ready, held, claimed = settle(chs, 15, 10, true)
	if claimed != 15 || len(ready) != 1 || len(held) != 1 {
		t.Fatalf("claimed %d, ready %v, held %v; want 15, a ready, b held", claimed, ready, held)
	}
	// Gaps bound the claim and are never sent.
	chs = []change{{key: "a", rev: 12, since: 12}, gapOf("/p", 12, 14)}
	ready, _, claimed = settle(chs, 15, 10, true)
	if claimed != 15 || len(ready) != 1 || ready[0].gap {
		t.Fatalf("claimed %d, ready %v; want 15 and only a (a gap is never sent)", claimed, ready)
	}
}

// TestSettlerProgressesUnderSteadyMergedWrites: two keys rewritten faster
// than the stream reads them merge at every read, each read's since just
// past the previous read, which the strict rule can never vouch for (the
// claim falls back to pos step after step). The settler must still send
// within maxStalledSteps+1 steps, with a rising claim.
func TestSettlerProgressesUnderSteadyMergedWrites(t *testing.T) {
	st := &settler{}
	var pos uint64 = 100
	lastA, lastB := pos, pos
	sent, zxid := 0, pos
	stalledRun, worst := 0, 0
	for step := range 40 {
		claim := zxid // caught up to what the reads before this step saw
		// This step's reads, both past the claim, each merging writes
		// since the key's previous read.
		zxid += 3
		a := change{key: "a", rev: zxid - 1, since: lastA + 1}
		b := change{key: "b", rev: zxid, since: lastB + 1}
		lastA, lastB = a.rev, b.rev
		ready, claimed := st.step([]change{a, b}, claim, pos)
		if claimed < pos {
			t.Fatalf("step %d: claim %d went below the last batch's %d", step, claimed, pos)
		}
		for _, c := range ready {
			if c.rev > claimed || c.rev <= pos {
				t.Fatalf("step %d: sent %v with claim %d after %d", step, c, claimed, pos)
			}
		}
		if len(ready) > 0 || claimed > pos {
			sent += len(ready)
			pos = claimed
			stalledRun = 0
		} else {
			stalledRun++
			worst = max(worst, stalledRun)
		}
		if len(st.held) > 2*(maxStalledSteps+2) {
			t.Fatalf("step %d: %d changes held: the held list grows without bound", step, len(st.held))
		}
	}
	if sent == 0 || worst > maxStalledSteps+1 {
		t.Fatalf("sent %d changes in 40 steps, longest stall %d steps; want progress within %d steps", sent, worst, maxStalledSteps+1)
	}
}
