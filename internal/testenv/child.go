package testenv

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
)

// Child processes are the test binary itself, run again with the name of a
// role in an environment variable: instead of running tests, its TestMain
// hands over to Child, which runs the role. This gives a test separate OS
// processes (an etcd server it can SIGKILL, election candidates it can
// SIGSTOP) without building other binaries.
const (
	childRoleEnv = "REGENT_TESTENV_CHILD"
	childArgsEnv = "REGENT_TESTENV_CHILD_ARGS"
)

var (
	rolesMu sync.Mutex
	roles   = map[string]func(args json.RawMessage) int{"etcd": runEtcdChild}
)

// RegisterChild makes role available to ChildCommand in this test binary:
// run is called with the arguments given to ChildCommand and returns the
// exit code. Register roles before TestMain calls Child (from init or the
// top of TestMain).
func RegisterChild(role string, run func(args json.RawMessage) int) {
	rolesMu.Lock()
	defer rolesMu.Unlock()
	roles[role] = run
}

// Child runs the role this process was started for, if any, and reports
// whether it did: a TestMain that starts children begins with
//
//	if code, ok := testenv.Child(); ok {
//		os.Exit(code)
//	}
func Child() (int, bool) {
	role := os.Getenv(childRoleEnv)
	if role == "" {
		return 0, false
	}
	rolesMu.Lock()
	run := roles[role]
	rolesMu.Unlock()
	if run == nil {
		fmt.Fprintf(os.Stderr, "testenv: unknown child role %q\n", role)
		return 2, true
	}
	return run(json.RawMessage(os.Getenv(childArgsEnv))), true
}

// ChildCommand returns a command that runs role in a new copy of this test
// binary, with args marshalled to JSON. The test package's TestMain must
// call Child, or the copy would run the tests instead.
func ChildCommand(role string, args any) (*exec.Cmd, error) {
	b, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childArgsEnv+"="+string(b))
	return cmd, nil
}
