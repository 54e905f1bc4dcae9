package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is one child OS process of a test (a server, or a candidate
// process of a chaos test) that the test can kill, pause, resume and start
// again. It runs in a process group of its own, so that signals reach
// whatever it forked (a JVM's children), and it is killed if the test
// binary dies (Pdeathsig). Its stdout and stderr go to a log file that
// survives restarts. A Process is safe for concurrent use.
type Process struct {
	name    string
	command func() *exec.Cmd
	ready   func(ctx context.Context) error // nil: started is ready
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the current process has been reaped
	waitErr error
	paused  bool
}

// NewProcess describes a process; Start runs it. command returns a fresh
// *exec.Cmd for every start (without Stdout, Stderr or SysProcAttr: the
// Process sets those); ready, if not nil, returns nil once the process
// serves, and is polled by Start.
func NewProcess(name, logPath string, command func() *exec.Cmd, ready func(ctx context.Context) error) *Process {
	return &Process{name: name, command: command, ready: ready, logPath: logPath}
}

// Name is the name given to NewProcess.
func (p *Process) Name() string { return p.name }

// LogPath is the file that holds the process's output.
func (p *Process) LogPath() string { return p.logPath }

// Start runs the process and waits until ready says it serves, the process
// exits, or ctx ends; on failure the process is killed. Starting a running
// process is an error.
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.cmd != nil && !isClosed(p.exited) {
		p.mu.Unlock()
		return fmt.Errorf("testenv: %s is already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := p.command()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		p.mu.Unlock()
		return fmt.Errorf("testenv: start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.waitErr, p.paused = cmd, exited, nil, false
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	p.mu.Unlock()
	if p.ready == nil {
		return nil
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.ready(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			exit := "exit status 0"
			if e := p.ExitErr(); e != nil {
				exit = e.Error()
			}
			return fmt.Errorf("testenv: %s exited while starting (%s): %w", p.name, exit, err)
		case <-ctx.Done():
			p.Kill()
			return fmt.Errorf("testenv: %s not ready: %w (last check: %w)", p.name, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond): // polling for readiness
		}
	}
}

// PID is the current process's id, or 0 when it is not running.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process has been started and not reaped.
func (p *Process) Running() bool { return p.PID() != 0 }

// Exited returns a channel closed once the current process has exited (a
// closed channel when none runs).
func (p *Process) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return p.exited
}

// ExitErr is what the last process's Wait returned: nil for exit status 0.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// signal sends sig to the process group of the current process.
func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || isClosed(p.exited) {
		return fmt.Errorf("testenv: %s is not running", p.name)
	}
	if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("testenv: signal %v to %s: %w", sig, p.name, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		p.paused = true
	case syscall.SIGCONT:
		p.paused = false
	}
	return nil
}

// Kill ends the process with SIGKILL (no clean shutdown, as a crash) and
// waits until it has been reaped. Killing what does not run does nothing.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd != nil && !isClosed(exited) {
		// Only while it has not been reaped: a reaped pid may belong to
		// another process by now.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	<-exited
	p.mu.Lock()
	if p.cmd == cmd {
		p.cmd, p.paused = nil, false
	}
	p.mu.Unlock()
}

// Terminate asks the process to stop (SIGTERM, after SIGCONT if paused) and
// waits up to timeout for it to exit, then kills it. It returns the
// process's exit error (nil for status 0), or an error saying it had to be
// killed.
func (p *Process) Terminate(timeout time.Duration) error {
	p.mu.Lock()
	cmd, exited, paused := p.cmd, p.exited, p.paused
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if paused {
		_ = p.signal(syscall.SIGCONT)
	}
	_ = p.signal(syscall.SIGTERM) // only while not reaped
	select {
	case <-exited:
		p.mu.Lock()
		err := p.waitErr
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		return err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("testenv: %s did not exit within %v of SIGTERM and was killed", p.name, timeout)
	}
}

// Pause stops the process (SIGSTOP): it holds its connections open but
// answers nothing, as a process in a long GC pause or a frozen VM.
// It returns once every thread of the process has stopped: kill(2) only
// queues the signal, and a thread still on a CPU could otherwise answer
// one more request after Pause returned.
func (p *Process) Pause() error {
	if err := p.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	p.mu.Lock()
	pid := 0
	if p.cmd != nil {
		pid = p.cmd.Process.Pid
	}
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !allThreadsStopped(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s (pid %d) not stopped 10s after SIGSTOP", p.name, pid)
		}
		time.Sleep(time.Millisecond) // polling /proc: there is no event to wait on
	}
	return nil
}

// allThreadsStopped reports whether every thread of pid is in the stopped
// state ("T" in /proc/pid/task/*/stat), or the process is gone.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true // gone, or no /proc: nothing more to wait for
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold spaces or parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return false
		}
		if st := b[i+2]; st != 'T' && st != 't' && st != 'Z' && st != 'X' {
			return false
		}
	}
	return true
}

// Resume continues a paused process (SIGCONT).
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT) }

// Paused reports whether the process is paused.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// Log returns the tail of the process's output (16 KiB at most).
func (p *Process) Log() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > 16<<10 {
		b = b[len(b)-16<<10:]
	}
	return string(b)
}

func isClosed(c chan struct{}) bool {
	if c == nil {
		return true
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// StartTogether starts every process at once and waits until all serve
// (or one fails): members of a new cluster wait for a quorum before they
// are ready, so starting them one by one would never finish. It returns
// the first error.
func StartTogether(ctx context.Context, procs []*Process) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	errs := make(chan error, len(procs))
	for _, p := range procs {
		go func() { errs <- p.Start(ctx) }()
	}
	var first error
	for range procs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
