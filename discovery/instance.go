package discovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/regentkv/regent/kv"
)

// DefaultPrefix is the directory under which services are registered when
// Options.Prefix is empty: one record per instance at
// "<prefix>/<service>/<instance ID>".
const DefaultPrefix = "services"

// ErrInvalidInstance is wrapped by the errors of Register and NewWatcher
// for a bad service name, instance ID, address or prefix.
var ErrInvalidInstance = errors.New("discovery: invalid instance")

// Instance is one registered endpoint of a service.
type Instance struct {
	// ID names the instance within its service (a host name, a pod name):
	// one path segment, unique per service. Registering an ID that is
	// already registered replaces that record.
	ID string `json:"id"`
	// Address is what clients dial, typically "host:port".
	Address string `json:"address"`
	// Metadata is free-form (zone, version, weight); watchers can filter
	// on it.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// matches reports whether every pair of want is in the instance's metadata.
func (i Instance) matches(want map[string]string) bool {
	for k, v := range want {
		if got, ok := i.Metadata[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (i Instance) clone() Instance {
	i.Metadata = maps.Clone(i.Metadata)
	return i
}

// serviceDir returns the normalised directory of service's records.
func serviceDir(prefix, service string) (string, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	p, err := kv.NormalizePrefix(prefix)
	if err != nil {
		return "", fmt.Errorf("%w: prefix %q: %w", ErrInvalidInstance, prefix, err)
	}
	if err := checkSegment("service", service); err != nil {
		return "", err
	}
	if p == "" {
		return service, nil
	}
	return p + "/" + service, nil
}

// checkSegment accepts a non-empty name that is one key segment.
func checkSegment(what, name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty %s name", ErrInvalidInstance, what)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: %s name %q contains '/'", ErrInvalidInstance, what, name)
	}
	if n, err := kv.NormalizeKey(name); err != nil || n != name {
		if err == nil {
			err = fmt.Errorf("normalises to %q", n)
		}
		return fmt.Errorf("%w: %s name %q: %w", ErrInvalidInstance, what, name, err)
	}
	return nil
}

// encode is the record of inst.
func encode(inst Instance) ([]byte, error) {
	if err := checkSegment("instance", inst.ID); err != nil {
		return nil, err
	}
	if inst.Address == "" {
		return nil, fmt.Errorf("%w: instance %q has no address", ErrInvalidInstance, inst.ID)
	}
	return json.Marshal(inst)
}

// decode reads the record at key, whose last segment must be its ID.
func decode(key string, value []byte) (Instance, error) {
	var inst Instance
	if err := json.Unmarshal(value, &inst); err != nil {
		return Instance{}, fmt.Errorf("discovery: record %q: %w", key, err)
	}
	if id := key[strings.LastIndexByte(key, '/')+1:]; inst.ID != id {
		return Instance{}, fmt.Errorf("discovery: record %q: id %q does not match its key", key, inst.ID)
	}
	if inst.Address == "" {
		return Instance{}, fmt.Errorf("discovery: record %q: no address", key)
	}
	return inst, nil
}

// sortByID sorts instances by ID, the order every list of this package has.
func sortByID(is []Instance) {
	slices.SortFunc(is, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
}
