package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker/auth"
)

func TestPasswdAddUpdateDelete(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	if r := runCLI(t, "first\n", nil, "passwd", f, "alice"); r.code != 0 {
		t.Fatalf("add: %d %s", r.code, r.stderr)
	}
	if r := runCLI(t, "bobpw", nil, "passwd", f, "bob"); r.code != 0 { // no newline at EOF
		t.Fatalf("add bob: %d %s", r.code, r.stderr)
	}
	before, _ := os.ReadFile(f)
	if r := runCLI(t, "second\r\n", nil, "passwd", f, "alice"); r.code != 0 {
		t.Fatalf("update: %d %s", r.code, r.stderr)
	}
	u, err := auth.LoadPasswordFile(f)
	if err != nil {
		t.Fatal(err)
	}
	// bcrypt is slow under -race: two checks say enough.
	if u.Len() != 2 || !u.Check("alice", []byte("second")) || !u.Check("bob", []byte("bobpw")) {
		t.Fatal("password file does not hold the expected users")
	}
	if after, _ := os.ReadFile(f); strings.Split(string(after), "\n")[1] != strings.Split(string(before), "\n")[1] {
		t.Fatal("updating alice changed bob's line")
	}
	fi, err := os.Stat(f)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	data, _ := os.ReadFile(f)
	if strings.Contains(string(data), "second") || !strings.Contains(string(data), "alice:$2") {
		t.Fatalf("file is not user:bcrypt lines:\n%s", data)
	}
	if r := runCLI(t, "", nil, "passwd", "-D", f, "bob"); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	u, _ = auth.LoadPasswordFile(f)
	if u.Len() != 1 || u.Has("bob") {
		t.Fatal("bob not deleted")
	}
}

func TestPasswdUsageErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	for _, tc := range []struct {
		stdin string
		args  []string
	}{
		{"pw\n", []string{"passwd", f}},                           // missing USER
		{"pw\n", []string{"passwd", f, "a:b"}},                    // ':' in user
		{"\n", []string{"passwd", f, "alice"}},                    // empty password
		{strings.Repeat("x", 80), []string{"passwd", f, "alice"}}, // longer than bcrypt takes
	} {
		r := runCLI(t, tc.stdin, nil, tc.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", tc.args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(f); err == nil {
		t.Fatal("a failed passwd created the file")
	}
	if r := runCLI(t, "pw\n", nil, "passwd", filepath.Join(f, "no", "dir"), "alice"); r.code != exitRuntime {
		t.Errorf("unwritable path: exit %d", r.code)
	}
}

func TestVersionLine(t *testing.T) {
	r := runCLI(t, "", nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "sngate ") || !strings.Contains(r.stdout, "go1.") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
	bi := buildInfo{Version: "v1.2.3", Commit: "0123456789abcdef0123", Modified: true, GoVersion: "go1.26", Platform: "linux/amd64"}
	if got := bi.String(); got != "sngate v1.2.3 (commit 0123456789ab+dirty) go1.26 linux/amd64" {
		t.Fatalf("String: %q", got)
	}
}

func TestRootUsage(t *testing.T) {
	r := runCLI(t, "", nil)
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Fatalf("bare sngate: %d %q", r.code, r.stdout)
	}
	r = runCLI(t, "", nil, "frobnicate")
	if r.code != exitUsage || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("unknown command: %d %q", r.code, r.stderr)
	}
	r = runCLI(t, "", nil, "version", "extra")
	if r.code != exitUsage {
		t.Fatalf("extra argument: %d", r.code)
	}
}
