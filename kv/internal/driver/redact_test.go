package driver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type Config struct{ User, Password string }

func (c Config) Format(f fmt.State, verb rune) {
	type plain Config
	c.Password = Redacted
	PrintConfig(f, verb, plain(c))
}

func (c Config) MarshalJSON() ([]byte, error) { return ConfigJSON(c) }

func TestPrintConfigRedactsEveryVerb(t *testing.T) {
	c := Config{User: "app", Password: "s3cret"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		if got := fmt.Sprintf(verb, c); strings.Contains(got, "s3cret") {
			t.Errorf("%s printed the secret: %s", verb, got)
		}
	}
	if got := fmt.Sprintf("%#v", c); !strings.HasPrefix(got, "driver.Config{User:\"app\"") {
		t.Errorf("%%#v = %s; want it to name the type Config and show the other fields", got)
	}
	b, err := json.Marshal(map[string]any{"cfg": c})
	if err != nil || strings.Contains(string(b), "s3cret") || !strings.Contains(string(b), "User:app") {
		t.Errorf("JSON %s, %v; want the redacted %%+v as a string", b, err)
	}
}
