package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/broker/bridge"
)

func TestBridgeMapping(t *testing.T) {
	f := writeFile(t, "b.yaml", `bridge:
  id: gw-1
  url: mqtts://cluster.example
  protocol_version: 4
  username: u
  tls: {ca_file: /ca.pem, server_name: cluster}
  keepalive: 30s
  session_expiry: -1s
  max_inflight: 10
  up:
    - {topic: "#", local_prefix: sensors/, remote_prefix: site/gw-1/, qos: 1}
  down:
    - {topic: "+/set", remote_prefix: cmd/, qos: 2}
  drop_qos0_while_down: true
  local_session_expiry: 48h
  transparent: {enabled: true, client_id_prefix: "t-", max_queued: 5}
`)
	cfg, err := loadConfig(loadOptions{File: f, Environ: []string{"SNGATE_BRIDGE_PASSWORD=secret"}})
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.bridgeConfig(discardLogger())
	if b.ID != "gw-1" || b.URL != "mqtts://cluster.example" || b.ProtocolVersion != 4 || b.Username != "u" ||
		b.Password != "secret" || b.TLS.CAFile != "/ca.pem" || b.TLS.ServerName != "cluster" ||
		b.KeepAlive != 30*time.Second || b.SessionExpiry != -time.Second || b.MaxInflight != 10 ||
		!b.DropQoS0WhileDown || b.LocalSessionExpiry != 48*time.Hour || b.Logger == nil {
		t.Fatalf("bridge config: %+v", b)
	}
	if len(b.Up) != 1 || b.Up[0].LocalPrefix != "sensors/" || b.Up[0].RemotePrefix != "site/gw-1/" || b.Up[0].QoS != 1 ||
		len(b.Down) != 1 || b.Down[0].Topic != "+/set" || b.Down[0].QoS != 2 {
		t.Fatalf("rules: %+v %+v", b.Up, b.Down)
	}
	if tr := b.Transparent; !tr.Enabled || tr.ClientIDPrefix != "t-" || tr.MaxQueued != 5 {
		t.Fatalf("transparent: %+v", tr)
	}

	// Off by default, and absent from the effective configuration.
	def, err := loadConfig(loadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if def.Bridge.enabled() || strings.Contains(mustMarshal(t, def), "bridge:") {
		t.Fatalf("the bridge is on by default: %+v", def.Bridge)
	}
}

func TestBridgeValidation(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"no url":        {"bridge:\n  id: a\n  up: [{topic: '#', qos: 0}]\n", "bridge.url: is required"},
		"no id":         {"bridge:\n  url: mqtt://h\n  up: [{topic: '#', qos: 0}]\n", "bridge.id: is required"},
		"scheme":        {"bridge:\n  id: a\n  url: http://h\n  up: [{topic: '#', qos: 0}]\n", "scheme"},
		"port":          {"bridge:\n  id: a\n  url: mqtt://h:70000\n  up: [{topic: '#', qos: 0}]\n", "port"},
		"nothing":       {"bridge:\n  id: a\n  url: mqtt://h\n", "nothing to bridge"},
		"bad filter":    {"bridge:\n  id: a\n  url: mqtt://h\n  up: [{topic: 'a/#/b', qos: 0}]\n", "bridge.up[0].topic"},
		"wild prefix":   {"bridge:\n  id: a\n  url: mqtt://h\n  down: [{topic: '#', remote_prefix: 'a/+/', qos: 0}]\n", "bridge.down[0]"},
		"qos":           {"bridge:\n  id: a\n  url: mqtt://h\n  up: [{topic: '#', qos: 3}]\n", "bridge.up[0].qos"},
		"version":       {"bridge:\n  id: a\n  url: mqtt://h\n  protocol_version: 3\n  up: [{topic: '#', qos: 0}]\n", "bridge.protocol_version"},
		"tls plain url": {"bridge:\n  id: a\n  url: mqtt://h\n  tls: {ca_file: x}\n  up: [{topic: '#', qos: 0}]\n", "bridge.tls"},
		"cert no key":   {"bridge:\n  id: a\n  url: mqtts://h\n  tls: {cert_file: x}\n  up: [{topic: '#', qos: 0}]\n", "bridge.tls.key_file: is required"},
		"shared":        {"bridge:\n  id: a\n  url: mqtt://h\n  up: [{topic: '$share/g/#', qos: 0}]\n", "shared"},
		"userinfo":      {"bridge:\n  id: a\n  url: mqtt://u:pw@h\n  up: [{topic: '#', qos: 0}]\n", "bridge.url: \"mqtt://u:xxxxx@h\" has credentials"},
		"qos range":     {"bridge:\n  id: a\n  url: mqtt://h\n  down: [{topic: '#', qos: -1}]\n", "bridge.down[0].qos: must be 0, 1 or 2"},
		"negative":      {"bridge:\n  id: a\n  url: mqtt://h\n  min_backoff: -1s\n  up: [{topic: '#', qos: 0}]\n", "bridge.min_backoff"},
		"t max queued":  {"bridge:\n  id: a\n  url: mqtt://h\n  transparent: {enabled: true, max_queued: -1}\n", "bridge.transparent.max_queued"},
		"unknown key":   {"bridge:\n  id: a\n  urll: mqtt://h\n", "bridge.urll: unknown key (did you mean bridge.url?)"},
	} {
		f := writeFile(t, "b.yaml", tc.yaml)
		_, err := loadConfig(loadOptions{File: f})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
	// Transparent mode alone is enough.
	f := writeFile(t, "b.yaml", "bridge:\n  id: a\n  url: tcp://h:1883\n  transparent: {enabled: true}\n")
	if _, err := loadConfig(loadOptions{File: f}); err != nil {
		t.Fatal(err)
	}
}

// TestBridgeKeys: every bridge.Config field, which Validate may name,
// has a key.
func TestBridgeKeys(t *testing.T) {
	for field, want := range map[string]string{
		"":                         "bridge",
		"ID":                       "bridge.id",
		"TLS.CertFile":             "bridge.tls.cert_file",
		"KeepAlive":                "bridge.keepalive",
		"Up[3].QoS":                "bridge.up[3].qos",
		"Down[0].RemotePrefix":     "bridge.down[0].remote_prefix",
		"Transparent.MaxQueued":    "bridge.transparent.max_queued",
		"NoSuchField.X":            "bridge.NoSuchField.X",
		"Transparent.Enabled.Deep": "bridge.transparent.enabled.Deep",
	} {
		if got, _ := bridgeKey(field); got != want {
			t.Errorf("bridgeKey(%q) = %q, want %q", field, got, want)
		}
	}
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for f := range typ.Fields() {
			if f.Name == "Logger" {
				continue
			}
			path := prefix + f.Name
			if _, ok := bridgeKey(path); !ok {
				t.Errorf("bridge.Config field %s has no key in BridgeConfig", path)
			}
			switch ft := f.Type; {
			case ft.Kind() == reflect.Struct:
				walk(path+".", ft)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				walk(path+"[0].", ft.Elem())
			}
		}
	}
	walk("", reflect.TypeFor[bridge.Config]())
}

// UDP socket buffers default to 4 MiB / 1 MiB in every sn.udp entry,
// including those from a file or from --sn-listen.
func TestUDPBufferDefaults(t *testing.T) {
	f := writeFile(t, "u.yaml", "sn:\n  udp:\n    - listen: ':1884'\n    - listen: ':1885'\n      read_buffer: 65536\n")
	cfg, err := loadConfig(loadOptions{File: f})
	if err != nil {
		t.Fatal(err)
	}
	u := cfg.udpConfigs()
	if len(u) != 2 || u[0].ReadBuffer != 4<<20 || u[0].WriteBuffer != 1<<20 || u[1].ReadBuffer != 65536 || u[1].WriteBuffer != 1<<20 {
		t.Fatalf("udp buffers: %+v", u)
	}
	a := &app{environ: func() []string { return nil }, getenv: func(string) string { return "" }}
	fs := a.newServeCmd().Flags()
	if err := fs.Parse([]string{"--sn-listen", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	cfg, err = a.loadServeConfig(writeFile(t, "none.yaml", "sn:\n  udp: []\n"), fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.SN.UDP) != 1 || cfg.SN.UDP[0].ReadBuffer != 4<<20 {
		t.Fatalf("--sn-listen link: %+v", cfg.SN.UDP)
	}
	if r, w, ok := probeUDPBuffers(1<<16, 1<<16); ok && (r < 1<<12 || w < 1<<12) {
		t.Fatalf("probe: read %d write %d", r, w)
	}
}

func TestPersistenceSwitch(t *testing.T) {
	a := &app{environ: func() []string { return nil }, getenv: func(string) string { return "" }}
	fs := a.newServeCmd().Flags()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err := a.loadServeConfig("", fs)
	if err != nil || !cfg.Persistence {
		t.Fatalf("persistence is not on by default: %v %v", cfg.Persistence, err)
	}
	if err := fs.Parse([]string{"--no-persistence"}); err != nil {
		t.Fatal(err)
	}
	if cfg, _ = a.loadServeConfig("", fs); cfg.Persistence {
		t.Fatal("--no-persistence did not turn it off")
	}
	cfg, err = loadConfig(loadOptions{Environ: []string{"SNGATE_PERSISTENCE=false"}})
	if err != nil || cfg.Persistence {
		t.Fatalf("SNGATE_PERSISTENCE=false: %v %v", cfg.Persistence, err)
	}
}
