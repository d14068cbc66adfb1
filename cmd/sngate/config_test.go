package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustMarshal(t *testing.T, c Config) string {
	t.Helper()
	b, err := marshalConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every file in configs/ passes 'config check', and its printed
// effective configuration is itself a valid config that checks to the
// same output.
func TestConfigsDirectoryChecks(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("want at least 6 YAML files in configs/, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := runCLI(t, "", nil, "config", "check", f)
			if r.code != 0 {
				t.Fatalf("config check %s: exit %d: %s", f, r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "ok; effective configuration") || !strings.Contains(r.stdout, "gateway_id:") {
				t.Fatalf("unexpected output:\n%s", r.stdout)
			}
			again := writeFile(t, "effective.yaml", r.stdout)
			r2 := runCLI(t, "", nil, "config", "check", again)
			if r2.code != 0 {
				t.Fatalf("effective config does not check: %s", r2.stderr)
			}
			body := func(s string) string { _, b, _ := strings.Cut(s, "\n"); return b }
			if body(r.stdout) != body(r2.stdout) {
				t.Fatalf("effective config is not stable:\n%s\n---\n%s", r.stdout, r2.stdout)
			}
		})
	}
}

// configs/sngate.yaml documents the defaults: loading it gives exactly the
// embedded configuration, and so does loading nothing.
func TestSngateYAMLIsTheDefaults(t *testing.T) {
	want := mustMarshal(t, defaultConfig())
	fromFile, err := loadConfig(loadOptions{File: "../../configs/sngate.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, fromFile); got != want {
		t.Fatalf("configs/sngate.yaml differs from defaultConfig():\n%s\n--- want\n%s", got, want)
	}
	none, err := loadConfig(loadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, none); got != want {
		t.Fatalf("no file differs from defaultConfig():\n%s", got)
	}
}

func TestConfigErrorsNameKeyFileAndLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"typo", "mqtt:\n  allow_anonymus: true\n", []string{":2:", "mqtt.allow_anonymus", "unknown key", "did you mean mqtt.allow_anonymous"}},
		{"top-level typo", "metric:\n  listen: x\n", []string{":1:", "metric", "unknown key", "did you mean metrics"}},
		{"list item typo", "sn:\n  udp:\n    - listen: \":1\"\n      lisen: \":2\"\n", []string{":4:", "sn.udp[0].lisen", "unknown key"}},
		{"bool as string", "mqtt:\n  allow_anonymous: \"yes\"\n", []string{"mqtt.allow_anonymous", "want true or false"}},
		{"yaml 1.1 yes is a string", "mqtt:\n  allow_anonymous: yes\n", []string{"mqtt.allow_anonymous", "want true or false"}},
		{"int as string", "sn:\n  gateway_id: \"3\"\n", []string{"sn.gateway_id", "want an integer"}},
		{"string as int", "sn:\n  clients:\n    - client_id: 42\n", []string{"sn.clients[0].client_id", "want a string", "quote it"}},
		{"duration without unit", "sn:\n  timers:\n    t_retry: 10\n", []string{"sn.timers.t_retry", "duration"}},
		{"bad duration", "mqtt:\n  sys_interval: soon\n", []string{"mqtt.sys_interval", "duration"}},
		{"map for list", "sn:\n  udp:\n    listen: \":1\"\n", []string{"sn.udp", "want a list"}},
		{"scalar for map", "log: debug\n", []string{"log", "want a mapping"}},
		{"null", "sn:\n  udp:\n", []string{"sn.udp", "no value", "[]"}},
		{"duplicate key", "log:\n  level: info\n  level: debug\n", []string{"log.level", "twice"}},
		{"syntax", "log: [\n", []string{"config"}},
		{"enum", "log:\n  level: verbose\n", []string{"log.level", "verbose"}},
		{"range", "sn:\n  gateway_id: 300\n", []string{"sn.gateway_id", "1..255"}},
		{"tls without cert", "mqtt:\n  listeners:\n    - type: tls\n      addr: \":8883\"\n", []string{"mqtt.listeners[0]", "cert and key"}},
		{"bad psk", "sn:\n  dtls:\n    - listen: \":5684\"\n      psk:\n        - identity: a\n          key_hex: zz\n", []string{"sn.dtls[0].psk[0].key_hex", "hexadecimal"}},
		{"dtls binding twice", "sn:\n  dtls:\n    - listen: \":5684\"\n      psk: [{identity: a, key_hex: \"00\"}]\n      bindings: [{identity: a, client_ids: [\"dev-*\"]}, {identity: a, client_ids: [x]}]\n", []string{"sn.dtls[0].bindings[1].identity", "twice"}},
		{"acl both", "mqtt:\n  acl_file: /x\n  acl: [{topic: a}]\n", []string{"mqtt.acl", "not both"}},
		{"acl bad filter", "mqtt:\n  acl: [{topic: \"a/#/b\"}]\n", []string{"mqtt.acl", "invalid topic filter"}},
		{"duplicate predefined", "sn:\n  predefined_topics:\n    - {client_id: \"*\", topic: a, id: 1}\n    - {client_id: \"*\", topic: b, id: 1}\n", []string{"sn.predefined_topics[1].id", "twice"}},
		{"qos -1 without address", "sn:\n  clients: [{client_id: A, qos_minus1: true}]\n", []string{"sn.clients[0].qos_minus1", "address"}},
		{"lora needs radio params", "sn:\n  serial: [{kind: rn2483, device: /dev/x}]\n", []string{"sn.serial[0].frequency_hz", "sn.serial[0].lora"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, "bad.yaml", tc.yaml)
			r := runCLI(t, "", nil, "config", "check", f)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr: %s", r.code, r.stderr)
			}
			if r.stdout != "" {
				t.Fatalf("printed a config for a bad file: %s", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one error line, got %q", r.stderr)
			}
			if !strings.Contains(r.stderr, f) {
				t.Fatalf("error does not name the file %s: %s", f, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Fatalf("error lacks %q: %s", w, r.stderr)
				}
			}
		})
	}
}

func TestConfigCheckUsage(t *testing.T) {
	if r := runCLI(t, "", nil, "config", "check"); r.code != exitUsage {
		t.Fatalf("no file: exit %d", r.code)
	}
	if r := runCLI(t, "", nil, "config", "check", "/nonexistent/sngate.yaml"); r.code != exitUsage || !strings.Contains(r.stderr, "/nonexistent/sngate.yaml") {
		t.Fatalf("missing file: exit %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "", nil, "config", "check", "--bogus", "x"); r.code != exitUsage {
		t.Fatalf("unknown flag: exit %d", r.code)
	}
	if r := runCLI(t, "", nil, "config", "check", "-q", "../../configs/dtls.yaml"); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("--quiet: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	empty := writeFile(t, "empty.yaml", "# nothing but a comment\n")
	if r := runCLI(t, "", nil, "config", "check", empty); r.code != 0 || !strings.Contains(r.stdout, "listen: :1884") {
		t.Fatalf("empty file: exit %d %s %s", r.code, r.stderr, r.stdout)
	}
}

func TestEnvironmentAndFlagPrecedence(t *testing.T) {
	file := writeFile(t, "c.yaml", "log:\n  level: warn\n  format: json\nmqtt:\n  allow_anonymous: true\n  sys_interval: 5s\ndata_dir: /from/file\n")
	env := []string{
		"SNGATE_LOG_LEVEL=error",             // overrides the file
		"SNGATE_MQTT_ALLOW_ANONYMOUS=false",  // bool from a string
		"SNGATE_MQTT_LIMITS_MAX_SESSIONS=42", // not in the file at all
		"SNGATE_MQTT_SYS_INTERVAL=1m",
		"SNGATE_SN_TIMERS_KEEPALIVE_TOLERANCE=2.5",
		"SNGATE_CONFIG=/ignored/by/loadConfig",
		"HOME=/root", // not ours
	}
	cfg, err := loadConfig(loadOptions{File: file, Environ: env})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "error" || cfg.Log.Format != "json" || cfg.MQTT.AllowAnonymous ||
		cfg.MQTT.Limits.MaxSessions != 42 || cfg.MQTT.SysInterval != Duration(time.Minute) ||
		cfg.SN.Timers.KeepAliveTolerance != 2.5 || cfg.DataDir != "/from/file" {
		t.Fatalf("env did not layer over the file: %+v", cfg)
	}

	// Flags win over the environment; unchanged flags do not override.
	cmd := (&app{getenv: func(string) string { return "" }, environ: func() []string { return env }}).newServeCmd()
	fs := cmd.Flags()
	if err := fs.Parse([]string{"--log-level", "debug", "--sn-listen", "127.0.0.1:0", "--mqtt-listen", ""}); err != nil {
		t.Fatal(err)
	}
	a := &app{environ: func() []string { return env }, getenv: func(string) string { return "" }}
	cfg, err = a.loadServeConfig(file, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" {
		t.Fatalf("flag did not win: log.level %q", cfg.Log.Level)
	}
	if cfg.DataDir != "/from/file" || cfg.Log.Format != "json" {
		t.Fatalf("unchanged flags overrode settings: %+v", cfg)
	}
	if len(cfg.SN.UDP) != 1 || cfg.SN.UDP[0].Listen != "127.0.0.1:0" {
		t.Fatalf("--sn-listen: %+v", cfg.SN.UDP)
	}
	if len(cfg.MQTT.Listeners) != 0 {
		t.Fatalf(`--mqtt-listen "" should remove the tcp listener: %+v`, cfg.MQTT.Listeners)
	}
}

func TestEnvironmentErrors(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string
	}{
		{"SNGATE_MQTT_ALLOW_ANONYMOUS=perhaps", []string{"SNGATE_MQTT_ALLOW_ANONYMOUS", "mqtt.allow_anonymous", "true or false"}},
		{"SNGATE_SN_GATEWAY_ID=seven", []string{"SNGATE_SN_GATEWAY_ID", "integer"}},
		{"SNGATE_MQTT_SYS_INTERVAL=10", []string{"SNGATE_MQTT_SYS_INTERVAL", "duration"}},
		{"SNGATE_MQTT_ALLOW_ANONYMUS=true", []string{"SNGATE_MQTT_ALLOW_ANONYMUS", "unknown"}},
		{"SNGATE_SN_UDP=:1884", []string{"SNGATE_SN_UDP", "config file only"}},
		{"SNGATE_LOG_LEVEL=loud", []string{"log.level", "loud", "environment"}},
	} {
		r := runCLI(t, "", []string{tc.env}, "config", "check", "../../configs/udp.yaml")
		if r.code != exitUsage {
			t.Fatalf("%s: exit %d", tc.env, r.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Fatalf("%s: error lacks %q: %s", tc.env, w, r.stderr)
			}
		}
	}
}

func TestClientIDsKeepTheirCase(t *testing.T) {
	f := writeFile(t, "c.yaml", `sn:
  clients:
    - client_id: Sensor-A
    - client_id: sensor-a
  predefined_topics:
    - {client_id: Sensor-A, topic: Home/Temp, id: 5}
  dtls:
    - listen: ":5684"
      psk: [{identity: Node-1, key_hex: "0a0b"}]
      bindings: [{identity: Node-1, client_ids: [Sensor-A]}]
`)
	cfg, err := loadConfig(loadOptions{File: f})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SN.Clients[0].ClientID != "Sensor-A" || cfg.SN.Clients[1].ClientID != "sensor-a" {
		t.Fatalf("client IDs changed: %+v", cfg.SN.Clients)
	}
	if p := cfg.SN.PredefinedTopics[0]; p.ClientID != "Sensor-A" || p.Topic != "Home/Temp" {
		t.Fatalf("predefined topic changed: %+v", p)
	}
	if b := cfg.SN.DTLS[0].Bindings[0]; b.Identity != "Node-1" || b.ClientIDs[0] != "Sensor-A" {
		t.Fatalf("binding changed: %+v", b)
	}
	dl, err := cfg.dtlsConfigs(discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(dl) != 1 || string(dl[0].cfg.PSKs[0].Key) != "\x0a\x0b" || dl[0].cfg.PSKs[0].Identity != "Node-1" {
		t.Fatalf("dtls mapping: %+v", dl)
	}
}

func TestBrokerAndLinkMapping(t *testing.T) {
	f := writeFile(t, "c.yaml", `mqtt:
  listeners:
    - {type: tcp, addr: "127.0.0.1:0"}
    - {type: ws, addr: "127.0.0.1:0", path: /ws}
  allow_anonymous: false
  sys_interval: 2s
  limits: {max_inflight: 7, max_queued_messages: 9}
sn:
  udp:
    - {listen: "127.0.0.1:0", multicast: "225.1.1.1:1883", mtu: 512}
  serial:
    - {kind: xbee, device: /dev/ttyUSB9, api_mode: 1}
`)
	cfg, err := loadConfig(loadOptions{File: f})
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.brokerConfig()
	if b.AllowAnonymous || b.SysInterval != 2*time.Second || b.MaxInflight != 7 || b.MaxQueuedMessages != 9 {
		t.Fatalf("broker config: %+v", b)
	}
	ls := cfg.listenerConfigs()
	if len(ls) != 2 || ls[1].Kind != "ws" || ls[1].Path != "/ws" || ls[0].Name == ls[1].Name {
		t.Fatalf("listener configs: %+v", ls)
	}
	u := cfg.udpConfigs()
	if len(u) != 1 || u[0].MulticastGroup != "225.1.1.1:1883" || u[0].MTU != 512 {
		t.Fatalf("udp configs: %+v", u)
	}
	s := cfg.serialConfigs(discardLogger())
	if len(s) != 1 || s[0].Kind != "xbee" || s[0].APIMode != 1 || s[0].Name != "xbee" {
		t.Fatalf("serial configs: %+v", s)
	}

	conc, err := loadConfig(loadOptions{File: "../../configs/concentrator.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	st := conc.semtechConfigs(discardLogger())
	if len(st) != 1 || st[0].Listen != ":1700" || st[0].NetworkID != 7 || st[0].RXDelay != time.Second ||
		st[0].TxLead != 200*time.Millisecond || st[0].PayloadLimit != 251 || st[0].Region != "EU868" {
		t.Fatalf("semtech configs: %+v", st)
	}
}

func TestInlineACL(t *testing.T) {
	acl, err := buildACL([]ACLRule{
		{Topic: "public/#", Access: "read"},
		{User: "alice", Topic: "alice/#"},
		{ClientID: "Sensor-1", Access: "write", Topic: "sensors/1/#"},
		{All: true, Access: "readwrite", Topic: "clients/%c/#"},
		{User: "alice", Access: "read", Topic: "read"}, // a topic named like an access word
	})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		ok                bool
		got               bool
		client, user, top string
	}{
		{true, acl.CanSubscribe("x", "", "public/news"), "x", "", "public/news"},
		{false, acl.CanPublish("x", "", "public/news"), "x", "", "public/news"},
		{true, acl.CanPublish("c", "alice", "alice/t"), "c", "alice", "alice/t"},
		{false, acl.CanPublish("c", "bob", "alice/t"), "c", "bob", "alice/t"},
		{true, acl.CanPublish("Sensor-1", "", "sensors/1/t"), "Sensor-1", "", "sensors/1/t"},
		{false, acl.CanPublish("sensor-1", "", "sensors/1/t"), "sensor-1", "", "sensors/1/t"},
		{true, acl.CanPublish("dev9", "", "clients/dev9/x"), "dev9", "", "clients/dev9/x"},
		{false, acl.CanPublish("dev9", "", "clients/dev8/x"), "dev9", "", "clients/dev8/x"},
		{true, acl.CanSubscribe("c", "alice", "read"), "c", "alice", "read"},
	}
	for i, c := range checks {
		if c.ok != c.got {
			t.Errorf("check %d (client %q user %q topic %q): got %v", i, c.client, c.user, c.top, c.got)
		}
	}
}

func TestLoadAuthReadsFiles(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	r := runCLI(t, "secret\n", nil, "passwd", pw, "alice")
	if r.code != 0 {
		t.Fatalf("passwd: %d %s", r.code, r.stderr)
	}
	aclFile := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclFile, []byte("user alice\ntopic readwrite a/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, acl, err := loadAuth(MQTTConfig{PasswordFile: pw, ACLFile: aclFile})
	if err != nil {
		t.Fatal(err)
	}
	if !users.Check("alice", []byte("secret")) || !acl.CanPublish("c", "alice", "a/b") || acl.CanPublish("c", "bob", "a/b") {
		t.Fatal("loaded auth does not behave")
	}
	if _, _, err := loadAuth(MQTTConfig{PasswordFile: filepath.Join(dir, "missing")}); err == nil || !strings.Contains(err.Error(), "mqtt.password_file") {
		t.Fatalf("missing password file: %v", err)
	}
}

func TestReplaceTCP(t *testing.T) {
	ls := []MQTTListener{{Type: "ws", Addr: ":80"}, {Type: "tcp", Addr: ":1883"}}
	got := replaceTCP(append([]MQTTListener(nil), ls...), "127.0.0.1:1")
	if got[1].Addr != "127.0.0.1:1" || got[0].Addr != ":80" {
		t.Fatalf("replace: %+v", got)
	}
	got = replaceTCP(append([]MQTTListener(nil), ls...), "")
	if len(got) != 1 || got[0].Type != "ws" {
		t.Fatalf("remove: %+v", got)
	}
	got = replaceTCP([]MQTTListener{{Type: "ws", Addr: ":80"}}, ":2")
	if len(got) != 2 || got[0].Type != "tcp" || got[0].Addr != ":2" {
		t.Fatalf("add: %+v", got)
	}
}

func TestEditDistanceAndSuggest(t *testing.T) {
	if d := editDistance("allow_anonymus", "allow_anonymous"); d != 1 {
		t.Fatalf("distance %d", d)
	}
	if d := editDistance("", "abc"); d != 3 {
		t.Fatalf("distance %d", d)
	}
	fields := fieldsOf(reflectTypeOfConfig())
	if got := suggest("mqt", fields); got != "mqtt" {
		t.Fatalf("suggest: %q", got)
	}
	if got := suggest("completely_different", fields); got != "" {
		t.Fatalf("suggest: %q", got)
	}
}
