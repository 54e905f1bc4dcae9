//go:build tools

// Package consul pins the open-source Consul server (v1.14, MPL-2.0) that the
// test suite builds from the Go module proxy. Later Consul releases (1.17 and
// on) are not open source and must never be used here.
package consul

import _ "github.com/hashicorp/consul"
