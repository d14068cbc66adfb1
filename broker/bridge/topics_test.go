package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		f, t string
		want bool
	}{
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"a/+", "a", false},
		{"a/+", "a/b", true},
		{"a/+/c", "a//c", true},
		{"+/b", "$x/b", false},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"+", "a", true},
		{"+", "", true},
	}
	for _, c := range cases {
		if got := match(c.f, c.t); got != c.want {
			t.Errorf("match(%q, %q) = %v, want %v", c.f, c.t, got, c.want)
		}
	}
}

func TestRules(t *testing.T) {
	up := rules{{Topic: "sensors/#", LocalPrefix: "", RemotePrefix: "site1/"}, {Topic: "#", LocalPrefix: "x/", RemotePrefix: "y/"}}
	for _, c := range []struct{ local, remote string }{
		{"sensors/t", "site1/sensors/t"},
		{"x/a/b", "y/a/b"},
		{"other", ""},
	} {
		got, _, ok := up.mapUp(c.local)
		if got != c.remote || ok != (c.remote != "") {
			t.Errorf("mapUp(%q) = %q %v, want %q", c.local, got, ok, c.remote)
		}
	}
	down := rules{{Topic: "#", RemotePrefix: "cmd/gw1/", LocalPrefix: "cmd/"}}
	if got, _, ok := down.mapDown("cmd/gw1/led"); !ok || got != "cmd/led" {
		t.Errorf("mapDown = %q %v", got, ok)
	}
	if _, _, ok := down.mapDown("cmd/gw2/led"); ok {
		t.Error("mapDown matched another gateway's topic")
	}
}

func TestOrigin(t *testing.T) {
	m := &broker.Message{Topic: "t", Payload: []byte("p"), Expiry: time.Now().Add(time.Hour)}
	om, live := toOut(m, "r/t", 1, false, "gw1")
	if !live || originOf(om.user) != "gw1" || om.expiry == 0 || om.expiry > 3600 {
		t.Fatalf("toOut: %+v live %v", om, live)
	}
	// A message that entered the cluster elsewhere keeps its origin.
	m.Props = &broker.Properties{User: []broker.UserProperty{{Key: OriginProperty, Value: "gw0"}}}
	if om, _ = toOut(m, "r/t", 1, false, "gw1"); originOf(om.user) != "gw0" {
		t.Fatalf("origin %q, want gw0", originOf(om.user))
	}
	m.Expiry = time.Now().Add(-time.Second)
	if _, live = toOut(m, "r/t", 1, false, "gw1"); live {
		t.Fatal("an expired message is live")
	}
	in := fromIn(&inMsg{topic: "x", qos: 1, user: [][2]string{{OriginProperty, "gw0"}}}, "y", 1)
	if origin(in.Props) != "gw0" || in.Topic != "y" {
		t.Fatalf("fromIn: %+v", in)
	}
}

func TestConfigValidate(t *testing.T) {
	srv, err := broker.New(broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ok := Config{ID: "gw1", URL: "mqtt://localhost", Up: []Rule{{Topic: "#"}}}
	if _, err := New(ok, srv); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no id":          func(c *Config) { c.ID = "" },
		"bad scheme":     func(c *Config) { c.URL = "http://x" },
		"no host":        func(c *Config) { c.URL = "mqtt://" },
		"bad version":    func(c *Config) { c.ProtocolVersion = 3 },
		"bad filter":     func(c *Config) { c.Up[0].Topic = "a/#/b" },
		"wild prefix":    func(c *Config) { c.Up[0].RemotePrefix = "a/+/" },
		"bad qos":        func(c *Config) { c.Up[0].QoS = 3 },
		"nothing":        func(c *Config) { c.Up = nil },
		"cert no key":    func(c *Config) { c.TLS.CertFile = "x.pem" },
		"missing CA":     func(c *Config) { c.URL = "mqtts://x"; c.TLS.CAFile = "/nonexistent.pem" },
		"shared":         func(c *Config) { c.Up[0].Topic = "$share/g/#" },
		"empty topic":    func(c *Config) { c.Up[0].Topic = "" },
		"partial plus":   func(c *Config) { c.Up[0].Topic = "a+" },
		"mount wildcard": func(c *Config) { c.Transparent.RemotePrefix = "#" },
	} {
		c := ok
		c.Up = []Rule{ok.Up[0]}
		mutate(&c)
		if _, err := New(c, srv); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(ok, nil); err == nil {
		t.Error("nil server accepted")
	}
}

// TestValidateFields: Validate needs no broker and names each field at
// fault.
func TestValidateFields(t *testing.T) {
	ok := Config{ID: "gw1", URL: "mqtt://localhost", Up: []Rule{{Topic: "#"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for want, mutate := range map[string]func(*Config){
		"ID":                        func(c *Config) { c.ID = "a b" },
		"ClientID":                  func(c *Config) { c.ClientID = "a+" },
		"URL":                       func(c *Config) { c.URL = "mqtt://u:pw@h" },
		"TLS":                       func(c *Config) { c.TLS.CAFile = "ca.pem" },
		"TLS.KeyFile":               func(c *Config) { c.URL = "mqtts://h"; c.TLS.CertFile = "c.pem" },
		"KeepAlive":                 func(c *Config) { c.KeepAlive = 70000 * time.Second },
		"MinBackoff":                func(c *Config) { c.MinBackoff = -1 },
		"MaxInflight":               func(c *Config) { c.MaxInflight = 70000 },
		"Up[0].Topic":               func(c *Config) { c.Up[0].Topic = "a/#/b" },
		"Up[0].LocalPrefix":         func(c *Config) { c.Up[0].LocalPrefix = "$share/g/" },
		"Up[1].QoS":                 func(c *Config) { c.Up = append(c.Up, Rule{Topic: "x", QoS: 3}) },
		"Down[0].RemotePrefix":      func(c *Config) { c.Down = []Rule{{Topic: "#", RemotePrefix: "a/+/"}} },
		"Transparent.MaxQueued":     func(c *Config) { c.Transparent.MaxQueued = -1 },
		"Transparent.SessionExpiry": func(c *Config) { c.Transparent.SessionExpiry = -1 },
		"":                          func(c *Config) { c.Up = nil },
	} {
		c := ok
		c.Up = []Rule{ok.Up[0]}
		mutate(&c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Fields) != 1 || ce.Fields[0].Field != want {
			t.Errorf("%q: got %v", want, err)
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != want || !strings.HasPrefix(err.Error(), "bridge: ") {
			t.Errorf("%q: errors.As FieldError: %v", want, err)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "ID: is required") ||
		!strings.Contains(err.Error(), "URL: is required") {
		t.Errorf("zero config: %v", err)
	}
}
