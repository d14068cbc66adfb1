package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// examplePTY opens a pseudo-terminal pair and returns the path of its
// device side, as a serial radio's device path would be. The controller
// side stays open (and silent) until the test ends.
func examplePTY(t *testing.T) string {
	t.Helper()
	ctl, dev, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { ctl.Close(); dev.Close() })
	return dev.Name()
}

// exampleConfig copies configs/NAME with each device path replaced by a
// fresh pty and every other substitution applied.
func exampleConfig(t *testing.T, name string, devices []string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", name))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, dev := range devices {
		if !strings.Contains(text, dev) {
			t.Fatalf("%s has no device %s", name, dev)
		}
		text = strings.ReplaceAll(text, "device: "+dev, "device: "+examplePTY(t))
	}
	text = strings.NewReplacer(repl...).Replace(text)
	return writeFile(t, name, text)
}

// readyFile reads serve's --ready-file.
func readyFile(t *testing.T, path string) readyInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ready file: %v", err)
	}
	var info readyInfo
	if err := json.Unmarshal(b, &info); err != nil {
		t.Fatalf("ready file %s: %v", b, err)
	}
	return info
}

// The example radio configs start sngate against real ptys: every serial
// link in them is opened and reported in the ready line.
func TestE2EExampleRadioConfigsStart(t *testing.T) {
	cases := []struct {
		file    string
		devices []string
	}{
		{"xbee.yaml", []string{"/dev/ttyUSB0"}},
		{"slip.yaml", []string{"/dev/ttyAMA0"}},
		{"lora.yaml", []string{"/dev/ttyACM0", "/dev/ttyUSB1"}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			cfg := exampleConfig(t, tc.file, tc.devices,
				"tx_device: /dev/ttyUSB2", "tx_device: "+examplePTY(t))
			rf := filepath.Join(t.TempDir(), "ready.json")
			s := startServe(t, "--config", cfg, "--ready-file", rf)
			info := readyFile(t, rf)
			if len(info.Serial) != len(tc.devices) {
				t.Fatalf("serial links in the ready line: %v, want %d", info.Serial, len(tc.devices))
			}
			// The first device of each file opens (the others of lora.yaml
			// open the same way; its LoRaLink TX port is a third pty).
			// startServe consumed the log up to the ready line; the open
			// line is either before it (in the output) or still to come.
			if !strings.Contains(s.output(), `"msg":"serial device open"`) {
				s.waitLog("serial device open")
			}
		})
	}
}

// configs/concentrator.yaml starts sngate as the server of a Semtech
// packet forwarder: a PUSH_DATA and a PULL_DATA from a forwarder are
// acknowledged by protocol.
func TestE2EExampleConcentratorConfig(t *testing.T) {
	cfg := exampleConfig(t, "concentrator.yaml", nil, `listen: ":1700"`, `listen: "127.0.0.1:0"`)
	rf := filepath.Join(t.TempDir(), "ready.json")
	startServe(t, "--config", cfg, "--ready-file", rf)
	info := readyFile(t, rf)
	if len(info.Semtech) != 1 {
		t.Fatalf("semtech links in the ready line: %v", info.Semtech)
	}
	addr := info.Semtech[0]
	if host, port, err := net.SplitHostPort(addr); err == nil && (host == "" || host == "::" || host == "0.0.0.0") {
		addr = net.JoinHostPort("127.0.0.1", port)
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	eui := []byte{0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x00, 0x01}
	stat := `{"stat":{"time":"2026-11-24 01:00:00 GMT","rxnb":0,"rxok":0,"rxfw":0,"ackr":100.0,"dwnb":0,"txnb":0}}`
	check := func(pkt []byte, wantID byte) {
		t.Helper()
		if _, err := conn.Write(pkt); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		_ = conn.SetReadDeadline(time.Now().Add(hangGuard))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer to identifier 0x%02x: %v", pkt[3], err)
		}
		if n < 4 || buf[0] != 2 || buf[1] != pkt[1] || buf[2] != pkt[2] || buf[3] != wantID {
			t.Fatalf("answer to 0x%02x = % x, want version 2, the same token, identifier 0x%02x", pkt[3], buf[:n], wantID)
		}
	}
	push := append([]byte{2, 0x12, 0x34, 0x00}, eui...)
	check(append(push, stat...), 0x01) // PUSH_DATA -> PUSH_ACK
	pull := append([]byte{2, 0x56, 0x78, 0x02}, eui...)
	check(pull, 0x04) // PULL_DATA -> PULL_ACK
}
