package driver

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Redacted stands for a secret in a printed Config.
const Redacted = "--- REDACTED ---"

// PrintConfig is a driver Config's Format: it prints plain, the Config
// with its secret already replaced, converted to a local type without
// methods (so that printing it does not recurse), with f's verb; for %#v
// it names the type Config, not the local one.
func PrintConfig(f fmt.State, verb rune, plain any) {
	out := fmt.Sprintf(fmt.FormatString(f, verb), plain)
	local := fmt.Sprintf("%T", plain) // "etcd.plain"
	pkg, _, _ := strings.Cut(local, ".")
	_, _ = io.WriteString(f, strings.Replace(out, local+"{", pkg+".Config{", 1))
}

// ConfigJSON is a driver Config's MarshalJSON: the Config printed with
// %+v (its secret replaced by its Format) as a JSON string, for structured
// loggers that print values as JSON. A Config is not a JSON document: it
// holds a TLS config, a logger and functions.
func ConfigJSON(cfg fmt.Formatter) ([]byte, error) { return json.Marshal(fmt.Sprintf("%+v", cfg)) }
