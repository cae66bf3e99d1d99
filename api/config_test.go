package api

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateRefusesOpenAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		field string // "" = valid
	}{
		{"default has no auth", func(*Config) {}, "token"},
		{"token", func(c *Config) { c.Token = strings.Repeat("x", MinTokenLength) }, ""},
		{"short token", func(c *Config) { c.Token = "short" }, "token"},
		{"insecure loopback", func(c *Config) { c.Insecure = true }, ""},
		{"insecure public", func(c *Config) { c.Insecure, c.Listen = true, "0.0.0.0:7400" }, "insecure"},
		{"ca without cert", func(c *Config) { c.TLS.CAFile = "ca.pem" }, "tls.ca"},
		{"cert without key", func(c *Config) { c.TLS.CertFile = "c.pem"; c.Token = strings.Repeat("x", 16) }, "tls.cert"},
		{"bad listen", func(c *Config) { c.Listen = "nope"; c.Insecure = true }, "listen"},
		{"bad rate", func(c *Config) { c.Insecure, c.RatePerSecond = true, 0 }, "rate_per_second"},
	} {
		c := DefaultConfig()
		tc.tweak(&c)
		err := c.Validate()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "config: "+tc.field+":") {
			t.Errorf("%s: got %v, want an error naming %s", tc.name, err, tc.field)
		}
	}
	c := DefaultConfig()
	if err := c.Validate(); !errors.Is(err, ErrOpen) && !strings.Contains(err.Error(), ErrOpen.Error()) {
		t.Errorf("default: %v", err)
	}
	if _, err := New(c, nil); err == nil {
		t.Fatal("New accepted a configuration without authentication")
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(0, 0)
	b := NewTokenBucket(10, 3)
	b.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if !b.Allow() {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if b.Allow() {
		t.Fatal("call beyond burst allowed")
	}
	now = now.Add(100 * time.Millisecond) // one token
	if !b.Allow() || b.Allow() {
		t.Fatal("refill of one token not honoured")
	}
	now = now.Add(time.Hour)
	for i := 0; i < 3; i++ {
		if !b.Allow() {
			t.Fatal("bucket did not refill to burst")
		}
	}
	if b.Allow() {
		t.Fatal("bucket exceeded burst after a long idle")
	}
}
