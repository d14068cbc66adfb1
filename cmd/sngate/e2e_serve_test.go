package main

// End-to-end scenarios; the harness is in e2e_test.go.

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestE2EPublishSubscribeMetricsAndSys(t *testing.T) {
	needMosquitto(t)
	cfg := writeFile(t, "sngate.yaml", `mqtt:
  sys_interval: 1s
sn:
  qos_minus1: true
  predefined_topics:
    - {client_id: "*", topic: pre/one, id: 1}
`)
	s := startServe(t, "--config", cfg)
	snArgs := []string{"-h", "127.0.0.1", "-p", s.snPort}

	// sngate pub -> broker -> mosquitto_sub, every QoS and topic form.
	watcher := mqttSub(t, s.mqttPort, "-t", "e2e/#", "-t", "pre/#", "-t", "ab", "-v")
	pubs := [][]string{
		{"-t", "e2e/qos0", "-m", "zero"},
		{"-t", "e2e/qos1", "-m", "one", "-q", "1"},
		{"-t", "e2e/qos2", "-m", "two", "-q", "2", "-i", "Pub-Two"},
		{"-T", "1", "-m", "predefined", "-q", "1"},
		{"-s", "ab", "-m", "short", "-q", "1"},
		{"-T", "1", "-m", "minus-one", "-q", "-1"},
	}
	for _, a := range pubs {
		if code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, snArgs...), a...)...); code != 0 {
			t.Fatalf("sngate pub %v: exit %d: %s", a, code, stderr)
		}
	}
	for _, want := range []string{"e2e/qos0 zero", "e2e/qos1 one", "e2e/qos2 two", "pre/one predefined", "ab short", "pre/one minus-one"} {
		watcher.waitLine(watcher.stdout, regexp.MustCompile("^"+regexp.QuoteMeta(want)+"$"))
	}

	// -r: a new MQTT subscriber gets the retained message.
	if code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, snArgs...), "-t", "e2e/retained", "-m", "kept", "-r", "-q", "1")...); code != 0 {
		t.Fatalf("pub -r: %s", stderr)
	}
	if code, out, _ := run(t, "", "mosquitto_sub", "-h", "127.0.0.1", "-p", s.mqttPort, "-t", "e2e/retained", "-C", "1"); code != 0 || out != "kept\n" {
		t.Fatalf("retained: exit %d %q", code, out)
	}

	// mosquitto_pub -> broker -> gateway -> sngate sub.
	sub := snSub(t, append(snArgs, "-t", "down/#", "-q", "1", "-v", "-C", "2")...)
	for i, m := range []string{"first", "second"} {
		if code, _, stderr := run(t, "", "mosquitto_pub", "-h", "127.0.0.1", "-p", s.mqttPort, "-t", "down/x"+strconv.Itoa(i), "-m", m, "-q", "1"); code != 0 {
			t.Fatalf("mosquitto_pub: %s", stderr)
		}
	}
	sub.waitLine(sub.stdout, regexp.MustCompile(`^down/x0 first$`))
	sub.waitLine(sub.stdout, regexp.MustCompile(`^down/x1 second$`))
	if code := sub.wait(); code != 0 {
		t.Fatalf("sngate sub -C 2 exit %d:\n%s", code, sub.output())
	}

	// sngate pub -> sngate sub, MQTT-SN on both sides, predefined topic.
	sub = snSub(t, append(snArgs, "-T", "1", "-v", "-C", "1")...)
	if code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, snArgs...), "-t", "pre/one", "-m", "sn-to-sn")...); code != 0 {
		t.Fatalf("pub: %s", stderr)
	}
	sub.waitLine(sub.stdout, regexp.MustCompile(`^predefined:1 sn-to-sn$`))
	if code := sub.wait(); code != 0 {
		t.Fatalf("sub exit %d", code)
	}

	// /metrics counts what happened; /healthz says ok.
	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_sn_publish_total{direction="in",qos="0-2"}`); v < 6 {
		t.Errorf("sn publish in = %v, want >= 6", v)
	}
	if v := sample(t, text, `sngate_sn_publish_total{direction="in",qos="-1"}`); v != 1 {
		t.Errorf("sn QoS -1 in = %v, want 1", v)
	}
	if v := sample(t, text, `sngate_sn_publish_total{direction="out",qos="0-2"}`); v < 3 {
		t.Errorf("sn publish out = %v, want >= 3", v)
	}
	if v := sample(t, text, `sngate_sn_client_events_total{event="connect"}`); v < 7 {
		t.Errorf("sn connects = %v", v)
	}
	if v := sample(t, text, `sngate_link_frames_total{direction="in",kind="udp",link="udp"}`); v < 20 {
		t.Errorf("udp frames in = %v", v)
	}
	if v := sample(t, text, `sngate_mqtt_connections{kind="tcp",listener="tcp0"}`); v < 1 {
		t.Errorf("mqtt connections = %v (mosquitto_sub is connected)", v)
	}
	if v := sample(t, text, "sngate_broker_messages_received_total"); v < 9 {
		t.Errorf("broker received = %v", v)
	}
	resp, err := http.Get("http://" + s.metrics + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("/healthz: %d %q", resp.StatusCode, body)
	}

	// $SYS/sngate/... for MQTT-only users: retained, republished every
	// sys_interval; wait for a publication that includes the traffic.
	sys := mqttSub(t, s.mqttPort, "-v", "-t", "$SYS/sngate/clients/total", "-t", "$SYS/sngate/messages/in",
		"-t", "$SYS/sngate/messages/in/qos-1")
	sys.waitLine(sys.stdout, regexp.MustCompile(`^\$SYS/sngate/clients/total \d+$`))
	sys.waitLine(sys.stdout, regexp.MustCompile(`^\$SYS/sngate/messages/in [1-9]\d*$`))
	sys.waitLine(sys.stdout, regexp.MustCompile(`^\$SYS/sngate/messages/in/qos-1 1$`))
}

// sngate sub --sleep: messages published while it sleeps arrive when it
// wakes.
func TestE2ESleepingSubscriber(t *testing.T) {
	needMosquitto(t)
	s := startServe(t)
	sub := snSub(t, "-p", s.snPort, "-t", "sleepy/#", "-q", "1", "-v", "--sleep", "1s", "-C", "2", "-i", "Sleeper")
	sub.waitLine(sub.stderr, regexp.MustCompile(`asleep for 1s`))
	for i, m := range []string{"while", "asleep"} {
		if code, _, stderr := run(t, "", "mosquitto_pub", "-h", "127.0.0.1", "-p", s.mqttPort, "-q", "1",
			"-t", "sleepy/"+strconv.Itoa(i), "-m", m); code != 0 {
			t.Fatal(stderr)
		}
	}
	sub.waitLine(sub.stderr, regexp.MustCompile(`woke, 2 buffered message\(s\)`))
	sub.waitLine(sub.stdout, regexp.MustCompile(`^sleepy/0 while$`))
	sub.waitLine(sub.stdout, regexp.MustCompile(`^sleepy/1 asleep$`))
	if code := sub.wait(); code != 0 {
		t.Fatalf("sleeping sub exit %d:\n%s", code, sub.output())
	}
	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_sn_client_events_total{event="sleep"}`); v < 1 {
		t.Errorf("sleeps = %v", v)
	}
	if v := sample(t, text, `sngate_sn_client_events_total{event="wake"}`); v < 1 {
		t.Errorf("wakes = %v", v)
	}
}

// pub --serial through a SLIP "radio": a socat pty pair stands for the
// wire between a bridge MCU and the gateway's serial port.
func TestE2ESerialSLIP(t *testing.T) {
	needMosquitto(t)
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat not installed (bash .ci/run installs it)")
	}
	dir := t.TempDir()
	gwTTY, clientTTY := filepath.Join(dir, "gw-tty"), filepath.Join(dir, "client-tty")
	pty := startProc(t, "socat", nil, "socat", "-d", "-d",
		"pty,raw,echo=0,link="+gwTTY, "pty,raw,echo=0,link="+clientTTY)
	pty.waitLine(pty.stderr, regexp.MustCompile(`starting data transfer loop`))
	cfg := writeFile(t, "slip.yaml", "sn:\n  udp: []\n  serial:\n    - kind: slip\n      device: "+gwTTY+"\n")
	s := startServe(t, "--config", cfg)
	watcher := mqttSub(t, s.mqttPort, "-t", "radio/#", "-v")
	code, _, stderr := run(t, "", sngateBin, "pub", "--serial", clientTTY, "--radio", "slip", "-t", "radio/slip", "-m", "over-the-wire", "-q", "1")
	if code != 0 {
		t.Fatalf("pub --serial: exit %d: %s", code, stderr)
	}
	watcher.waitLine(watcher.stdout, regexp.MustCompile(`^radio/slip over-the-wire$`))
	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_link_frames_total{direction="in",kind="serial",link="slip"}`); v < 4 {
		t.Errorf("serial frames in = %v", v)
	}
	// A device that does not exist: a runtime failure, one line.
	code, _, stderr = run(t, "", sngateBin, "pub", "--serial", filepath.Join(dir, "absent"), "--radio", "slip",
		"-t", "a", "-m", "b", "--retry", "100ms", "--retries", "1")
	if code != exitRuntime || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("absent device: exit %d %q", code, stderr)
	}
}

// sngate dump --forward sits between a client and the gateway and prints
// the whole exchange.
func TestE2EDumpRelay(t *testing.T) {
	s := startServe(t)
	dump := startProc(t, "dump", nil, sngateBin, "dump", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:"+s.snPort)
	m := dump.waitLine(dump.stderr, regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+)`))
	if code, _, stderr := run(t, "", sngateBin, "pub", "-p", m[1], "-t", "dump/me", "-m", "hello", "-q", "1", "-i", "dumped"); code != 0 {
		t.Fatalf("pub through dump: %s", stderr)
	}
	for _, re := range []string{
		`MQTT-SN \d+ CONNECT .*clientId="dumped"$`,
		`CONNACK rc=accepted \[relayed\]$`,
		`REGISTER topicId=0 msgId=\d+ topic="dump/me"$`,
		`REGACK topicId=\d+ msgId=\d+ rc=accepted \[relayed\]$`,
		`PUBLISH dup=0 qos=1 .* payload="hello"$`,
		`PUBACK .*rc=accepted \[relayed\]$`,
		`DISCONNECT$`,
		`DISCONNECT \[relayed\]$`,
	} {
		dump.waitLine(dump.stdout, regexp.MustCompile(re))
	}
	_ = dump.cmd.Process.Signal(syscall.SIGINT)
	if code := dump.wait(); code != 0 {
		t.Fatalf("dump exit %d after SIGINT:\n%s", code, dump.output())
	}
}

func TestE2EReloadAndGracefulStop(t *testing.T) {
	needMosquitto(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	if code, _, stderr := run(t, "pw-one\n", sngateBin, "passwd", pw, "alice"); code != 0 {
		t.Fatalf("passwd: %s", stderr)
	}
	cfgPath := filepath.Join(dir, "sngate.yaml")
	cfgText := "mqtt:\n  password_file: " + pw + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, "--config", cfgPath)
	mqttPub := func(password string) int {
		code, _, _ := run(t, "", "mosquitto_pub", "-h", "127.0.0.1", "-p", s.mqttPort, "-u", "alice", "-P", password,
			"-t", "sn/hup", "-m", "as-alice")
		return code
	}
	if mqttPub("pw-one") != 0 || mqttPub("wrong") == 0 {
		t.Fatal("password file not in force at start")
	}

	// An MQTT-SN subscriber, through dump so the gateway's goodbye shows,
	// stays connected across the reload.
	dump := startProc(t, "dump", nil, sngateBin, "dump", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:"+s.snPort)
	dm := dump.waitLine(dump.stderr, regexp.MustCompile(`listening on 127\.0\.0\.1:(\d+)`))
	sub := snSub(t, "-p", dm[1], "-t", "sn/#", "-v", "-i", "Survivor")

	// New password, SIGHUP: the new one works, the old one no longer.
	if code, _, stderr := run(t, "pw-two\n", sngateBin, "passwd", pw, "alice"); code != 0 {
		t.Fatalf("passwd: %s", stderr)
	}
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	if rec := s.waitLog("reloaded"); rec["users"] != float64(1) {
		t.Fatalf("reload record: %v", rec)
	}
	if mqttPub("pw-two") != 0 || mqttPub("pw-one") == 0 {
		t.Fatal("reloaded password file not in force")
	}
	sub.waitLine(sub.stdout, regexp.MustCompile(`^sn/hup as-alice$`)) // the session survived

	// A broken file on SIGHUP changes nothing and says why.
	if err := os.WriteFile(cfgPath, []byte(cfgText+"  allow_anonymus: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = s.cmd.Process.Signal(syscall.SIGHUP)
	rec := s.waitLog("reload failed; keeping the running configuration")
	if errText, _ := rec["err"].(string); !strings.Contains(errText, "mqtt.allow_anonymus") || !strings.Contains(errText, cfgPath) {
		t.Fatalf("reload error does not name key and file: %v", rec)
	}
	if mqttPub("pw-two") != 0 {
		t.Fatal("serve stopped serving after a bad reload")
	}

	// SIGTERM: serve stops cleanly, and the MQTT-SN client is told.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitLog("stopped")
	if code := s.wait(); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}
	dump.waitLine(dump.stdout, regexp.MustCompile(`→ 127\.0\.0\.1:\d+ MQTT-SN 2 DISCONNECT \[relayed\]$`))
	if code := sub.wait(); code != exitRuntime || !strings.Contains(sub.output(), "the gateway sent DISCONNECT") {
		t.Fatalf("sngate sub after gateway stop: exit %d\n%s", code, sub.output())
	}
}

func TestE2EConfigMistakesExitTwo(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct{ yaml, want string }{
		"typo":       {"mqtt:\n  allow_anonymus: false\n", "mqtt.allow_anonymus"},
		"wrong type": {"sn:\n  gateway_id: one\n", "sn.gateway_id"},
		"bad value":  {"log:\n  format: xml\n", "log.format"},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".yaml")
		if err := os.WriteFile(f, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := run(t, "", sngateBin, "serve", "--config", f, "--mqtt-listen", "127.0.0.1:0", "--sn-listen", "127.0.0.1:0", "--metrics-listen", "")
		if code != exitUsage || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, f) {
			t.Errorf("%s: exit %d, stderr %q", name, code, stderr)
		}
		if strings.Contains(stderr, "ready") || stdout != "" {
			t.Errorf("%s: serve started anyway: %s %s", name, stdout, stderr)
		}
	}
	// A bad environment variable and a bad flag are usage errors too.
	cmd := exec.Command(sngateBin, "serve", "--metrics-listen", "")
	cmd.Env = cleanEnv("SNGATE_SN_GATEWAY_ID=x")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "SNGATE_SN_GATEWAY_ID") {
		t.Errorf("bad env: exit %d %s", cmd.ProcessState.ExitCode(), out)
	}
	if code, _, stderr := run(t, "", sngateBin, "serve", "--log-level", "chatty"); code != exitUsage || !strings.Contains(stderr, "log.level") {
		t.Errorf("bad flag value: exit %d %s", code, stderr)
	}
	if code, _, _ := run(t, "", sngateBin, "serve", "--no-such-flag"); code != exitUsage {
		t.Errorf("unknown flag: exit %d", code)
	}
}

func TestE2EClientExitCodes(t *testing.T) {
	// Nothing listens on this port: a network failure, exit 1.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	pc.Close()
	code, _, stderr := run(t, "", sngateBin, "pub", "-p", port, "-t", "a", "-m", "x", "--retry", "200ms", "--retries", "1")
	if code != exitRuntime || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("pub to nothing: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{
		{"pub", "-t", "a"},                               // no message
		{"pub", "-m", "x"},                               // no topic
		{"pub", "-t", "a", "-T", "1", "-m", "x"},         // two topics
		{"pub", "-t", "a", "-m", "x", "-q", "3"},         // bad QoS
		{"pub", "-s", "abc", "-m", "x"},                  // short topic is 2 chars
		{"pub", "-t", "a", "-m", "x", "--psk", "00"},     // --psk without --dtls
		{"pub", "-t", "a", "-m", "x", "--dtls"},          // no credentials
		{"sub", "-t", "a", "-q", "-1"},                   // QoS -1 subscribe
		{"sub"},                                          // no topic
		{"pub", "-t", "a", "-m", "x", "--radio", "xbee"}, // --radio without --serial
		{"pub", "-t", "a", "-m", "x", "--serial", "/dev/null", "--radio", "rn2483"},
	} {
		code, _, stderr := run(t, "", sngateBin, args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// DTLS end to end: serve with a PSK listener, pub and sub over DTLS.
func TestE2EDTLS(t *testing.T) {
	cfg := writeFile(t, "dtls.yaml", `sn:
  dtls:
    - listen: "127.0.0.1:0"
      psk:
        - identity: node-1
          key_hex: "00112233445566778899aabbccddeeff"
      bindings:
        - identity: node-1
          client_ids: ["{identity}", "dev-*"]
`)
	s := startServe(t, "--config", cfg)
	ready := s.proc.output()
	m := regexp.MustCompile(`"sn_dtls":\["127\.0\.0\.1:(\d+)"\]`).FindStringSubmatch(ready)
	if m == nil {
		t.Fatalf("no DTLS address in the ready line:\n%s", ready)
	}
	dtlsArgs := []string{"--dtls", "-p", m[1], "--psk-identity", "node-1", "--psk", "00112233445566778899aabbccddeeff"}
	sub := snSub(t, append(dtlsArgs, "-i", "node-1", "-t", "dtls/hello", "-v", "-C", "1")...)
	// node-1 may also use dev-*, nothing else.
	if code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, dtlsArgs...), "-i", "dev-7", "-t", "dtls/x", "-m", "ok")...); code != 0 {
		t.Fatalf("pub as dev-7: exit %d %s", code, stderr)
	}
	code, _, stderr := run(t, "", sngateBin, append(append([]string{"pub"}, dtlsArgs...), "-i", "intruder", "-t", "dtls/x", "-m", "no")...)
	if code != exitRuntime || !strings.Contains(stderr, "connect") {
		t.Fatalf("pub as another client ID: exit %d %s", code, stderr)
	}
	// A wrong key fails the handshake.
	bad := append([]string(nil), dtlsArgs...)
	bad[len(bad)-1] = "ffeeddccbbaa99887766554433221100"
	if code, _, _ := run(t, "", sngateBin, append(append([]string{"pub"}, bad...), "-i", "node-1", "-t", "dtls/x", "-m", "no", "--retry", "500ms", "--retries", "1")...); code != exitRuntime {
		t.Fatalf("wrong PSK: exit %d", code)
	}
	// The UDP link is up too; the DTLS subscriber gets a plain UDP publish.
	if code, _, stderr := run(t, "", sngateBin, "pub", "-p", s.snPort, "-t", "dtls/hello", "-m", "over-udp"); code != 0 {
		t.Fatalf("pub: %s", stderr)
	}
	sub.waitLine(sub.stdout, regexp.MustCompile(`^dtls/hello over-udp$`))
	if code := sub.wait(); code != 0 {
		t.Fatalf("dtls sub exit %d", code)
	}
	text := scrape(t, s.metrics)
	if v := sample(t, text, `sngate_dtls_handshakes_total{link="dtls",result="ok"}`); v < 2 {
		t.Errorf("dtls handshakes ok = %v", v)
	}
	if v := sample(t, text, `sngate_sn_rejections_total{reason="identity"}`); v < 1 {
		t.Errorf("identity rejections = %v", v)
	}
}

func TestE2EVersionAndHelp(t *testing.T) {
	code, out, _ := run(t, "", sngateBin, "version")
	if code != 0 || !regexp.MustCompile(`^sngate \S+ \(commit \S+.*\) go1\.\d+`).MatchString(out) {
		t.Fatalf("version: %d %q", code, out)
	}
	for _, cmd := range []string{"serve", "pub", "sub", "dump", "config check", "passwd", "version"} {
		args := append(strings.Fields(cmd), "--help")
		code, out, _ := run(t, "", sngateBin, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "sngate "+cmd) {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out)
		}
	}
	// -h is the host of pub and sub, not help.
	if _, out, _ := run(t, "", sngateBin, "pub", "--help"); !strings.Contains(out, "-h, --host") {
		t.Errorf("pub --help lacks -h, --host:\n%s", out)
	}
}
