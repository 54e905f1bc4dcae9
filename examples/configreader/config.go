package main

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Config is the application's configuration, stored as JSON at configKey.
type Config struct {
	Greeting string `json:"greeting"`
	Replicas int    `json:"replicas"`
	LogLevel string `json:"logLevel"`
}

func (c Config) String() string {
	return fmt.Sprintf("{greeting %q, replicas %d, logLevel %s}", c.Greeting, c.Replicas, c.LogLevel)
}

// decodeConfig is the informer's Decode: a value that is not a valid
// Config is refused (the informer reports it and treats the key as absent)
// rather than served half-understood.
func decodeConfig(_ string, value []byte) (Config, error) {
	var c Config
	d := json.NewDecoder(bytes.NewReader(value))
	d.DisallowUnknownFields()
	if err := d.Decode(&c); err != nil {
		return Config{}, err
	}
	if c.Replicas < 0 {
		return Config{}, fmt.Errorf("replicas %d is negative", c.Replicas)
	}
	return c, nil
}
