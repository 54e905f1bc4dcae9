package driver

import "sync"

// Group tracks the goroutines of one Store, so that Close can stop
// starting them and then wait for every one: Go after Stop starts nothing
// and says so. The zero value is ready to use.
type Group struct {
	mu      sync.Mutex // orders Go's Add against Stop, so that Wait sees every Add
	stopped bool
	wg      sync.WaitGroup
}

// Go runs f in a goroutine of the group and reports true, or reports
// false and runs nothing once Stop was called.
func (g *Group) Go(f func()) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
	return true
}

// Stop makes every later Go start nothing. Idempotent.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// Wait waits for every goroutine Go started; call it after Stop.
func (g *Group) Wait() { g.wg.Wait() }
