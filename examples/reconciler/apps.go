package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/regentkv/regent/controller"
	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/informer"
	"github.com/regentkv/regent/kv"
)

const (
	desiredPrefix = "apps/desired"
	actualPrefix  = "apps/actual"
	electionKey   = "apps/controller"
)

// App is the desired state of one application, written by users.
type App struct {
	Image    string `json:"image"`
	Replicas int    `json:"replicas"`
}

// Status is the actual state the controller maintains for one App: what
// was deployed, by which replica, in which leadership term.
type Status struct {
	App
	By    string `json:"by"`
	Token uint64 `json:"token"`
}

func decodeApp(_ string, v []byte) (App, error) {
	var a App
	err := json.Unmarshal(v, &a)
	return a, err
}

func decodeStatus(_ string, v []byte) (Status, error) {
	var s Status
	err := json.Unmarshal(v, &s)
	return s, err
}

func appName(key string) string {
	return key[strings.LastIndexByte(key, '/')+1:]
}

// reconciled is one thing a reconcile did, for the timeline.
type reconciled struct {
	Replica, App, Action string
	Token                uint64
}

// appReconciler converges apps/actual/<name> to apps/desired/<name>. It is
// level-based: it compares the two states it reads from the caches and
// writes only the difference, so running it again changes nothing.
type appReconciler struct {
	replica string
	actual  *informer.Informer[Status]
	report  func(reconciled)
}

func (r *appReconciler) Reconcile(ctx context.Context, req controller.Request[App]) (controller.Result, error) {
	// The Manager runs this controller only while this replica leads; the
	// term fences every write, so a deposed leader's late write is refused
	// by the store instead of overwriting the new leader's.
	term, ok := election.TermFrom(ctx)
	if !ok {
		return controller.Result{}, controller.Terminal(errors.New("reconcile without a leadership term"))
	}
	name := appName(req.Key)
	statusKey := actualPrefix + "/" + name
	current, deployed := r.actual.Get(statusKey)

	switch {
	case !req.Exists && !deployed:
		return controller.Result{}, nil
	case !req.Exists:
		if err := term.GuardedDelete(ctx, statusKey); err != nil && !errors.Is(err, kv.ErrKeyNotFound) {
			return controller.Result{}, fmt.Errorf("remove %s: %w", name, err)
		}
		r.report(reconciled{r.replica, name, "removed", term.Token})
		return controller.Result{}, nil
	case deployed && current.App == req.Object:
		return controller.Result{}, nil // up to date, whoever deployed it
	}
	if req.Object.Replicas < 0 {
		// No retry can fix this: wait for the user to change it.
		return controller.Result{}, controller.Terminal(fmt.Errorf("%s: negative replicas %d", name, req.Object.Replicas))
	}
	value, err := json.Marshal(Status{App: req.Object, By: r.replica, Token: term.Token})
	if err != nil {
		return controller.Result{}, controller.Terminal(err)
	}
	if err := term.GuardedPut(ctx, statusKey, value, nil); err != nil {
		return controller.Result{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	action := fmt.Sprintf("deployed %s x%d", req.Object.Image, req.Object.Replicas)
	if deployed {
		action = fmt.Sprintf("updated %s x%d -> %s x%d", current.Image, current.Replicas, req.Object.Image, req.Object.Replicas)
	}
	r.report(reconciled{r.replica, name, action, term.Token})
	return controller.Result{}, nil
}
