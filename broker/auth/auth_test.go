package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// setPw writes a user at bcrypt's minimum cost: the default cost takes
// seconds under the race detector.
func setPw(t *testing.T, path, user, pw string) {
	t.Helper()
	h, err := HashPasswordCost([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := SetPasswordHash(path, user, h); err != nil {
		t.Fatal(err)
	}
}

func TestPasswordFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte("# users\n\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	setPw(t, path, "alice", "s3cret")
	setPw(t, path, "bob", "pw")
	setPw(t, path, "alice", "new")
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "# users\n") || strings.Count(string(data), "alice:") != 1 {
		t.Fatalf("file:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v not kept", fi.Mode().Perm())
	}
	u, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if u.Len() != 2 || !u.Has("bob") {
		t.Fatalf("users %d", u.Len())
	}
	if !u.Check("alice", []byte("new")) || u.Check("alice", []byte("s3cret")) || u.Check("carol", []byte("x")) {
		t.Error("check")
	}
	if !u.Check("alice", []byte("new")) { // cached path
		t.Error("cached check")
	}
	if u.Check("alice", []byte("new2")) {
		t.Error("cache confused passwords")
	}
	if err := DeleteUser(path, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := DeleteUser(path, "nobody"); err != nil {
		t.Fatal(err)
	}
	u, _ = LoadPasswordFile(path)
	if u.Has("bob") || !u.Has("alice") {
		t.Error("delete")
	}
	for _, bad := range []string{"", "a:b", "a\nb"} {
		if SetPassword(path, bad, []byte("x")) == nil {
			t.Errorf("user %q accepted", bad)
		}
	}
	if SetPasswordHash(path, "x", "plain") == nil {
		t.Error("non-bcrypt hash accepted")
	}
	// A new file is created with mode 0600; SetPassword uses the default cost.
	p2 := filepath.Join(t.TempDir(), "new")
	if err := SetPassword(p2, "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if u, err := LoadPasswordFile(p2); err != nil || u.Len() != 1 {
		t.Fatal(err)
	} else if c, _ := bcrypt.Cost(u.hashes["x"]); c != DefaultCost {
		t.Errorf("cost %d", c)
	}
	if fi, _ := os.Stat(p2); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func TestParsePasswordsErrors(t *testing.T) {
	for _, in := range []string{"alice", "alice:plain", ":$2a$10$abc"} {
		if _, err := ParsePasswords(strings.NewReader(in)); !errors.Is(err, ErrBadPasswordFile) {
			t.Errorf("%q: %v", in, err)
		}
	}
	if _, err := LoadPasswordFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file")
	}
}

const aclText = `
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic write shared/in
topic $SYS/#

client sensor-1
topic write sensors/sensor-1/#

pattern write devices/%c/out
pattern read devices/%c/in/+
pattern read users/%u/#
pattern read dev-%c-x/#
`

func TestACL(t *testing.T) {
	a, err := ParseACL(strings.NewReader(aclText))
	if err != nil {
		t.Fatal(err)
	}
	pubs := []struct {
		c, u, topic string
		ok          bool
	}{
		{"x", "", "public/a", false}, // read only
		{"x", "alice", "alice/a/b", true},
		{"x", "alice", "alice", true},
		{"x", "alice", "shared/in", true},
		{"x", "bob", "alice/a", false},
		{"sensor-1", "", "sensors/sensor-1/t", true},
		{"sensor-2", "", "sensors/sensor-1/t", false},
		{"d7", "", "devices/d7/out", true},
		{"d7", "", "devices/d8/out", false},
		{"a/b", "", "devices/a/b/out", false}, // '/' in client ID: no substitution
		{"+", "", "devices/+/out", false},
		{"x", "alice", "$SYS/x", true},
		{"x", "", "$SYS/x", false},
	}
	for _, c := range pubs {
		if got := a.CanPublish(c.c, c.u, c.topic); got != c.ok {
			t.Errorf("CanPublish(%q,%q,%q) = %v", c.c, c.u, c.topic, got)
		}
	}
	subs := []struct {
		c, u, filter string
		ok           bool
	}{
		{"x", "", "public/#", true},
		{"x", "", "public/+/a", true},
		{"x", "", "#", false},
		{"x", "", "public", true},
		{"x", "alice", "public/a", false}, // anonymous rules are for anonymous clients
		{"x", "alice", "alice/+", true},
		{"x", "alice", "shared/in", false}, // write only
		{"d7", "", "devices/d7/in/+", true},
		{"d7", "", "devices/d7/in/#", false}, // + does not cover #
		{"d7", "", "devices/+/in/x", false},
		{"x", "bob", "users/bob/#", true},
		{"x", "", "users//#", false}, // empty user name: no substitution
		{"q", "", "dev-q-x/y", true},
		{"q", "", "dev-r-x/y", false},
		{"x", "alice", "$SYS/#", true},
	}
	for _, c := range subs {
		if got := a.CanSubscribe(c.c, c.u, c.filter); got != c.ok {
			t.Errorf("CanSubscribe(%q,%q,%q) = %v", c.c, c.u, c.filter, got)
		}
	}
}

func TestACLDollarTopics(t *testing.T) {
	a, err := ParseACL(strings.NewReader("pattern readwrite #\npattern read +/x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.CanPublish("c", "", "$SYS/x") || a.CanSubscribe("c", "", "$SYS/#") || a.CanSubscribe("c", "", "$SYS/x") {
		t.Error("first-level wildcard matched a $ topic")
	}
	if !a.CanPublish("c", "", "a/b") || !a.CanSubscribe("c", "", "#") || !a.CanSubscribe("c", "", "+/x") {
		t.Error("wildcard rule")
	}
}

func TestACLParseErrors(t *testing.T) {
	for _, in := range []string{"user", "frobnicate x", "topic read", "topic read a/#/b", "pattern a+"} {
		if _, err := ParseACL(strings.NewReader(in)); !errors.Is(err, ErrBadACL) {
			t.Errorf("%q: %v", in, err)
		}
	}
	a, err := ParseACL(strings.NewReader("topic a b/c\n"))
	if err != nil || !a.CanPublish("x", "", "a b/c") {
		t.Errorf("filter with a space: %v", err)
	}
}

func TestLevelSubstitution(t *testing.T) {
	s := subst{c: "id", u: "usr"}
	cases := []struct {
		pat, level string
		want       bool
	}{
		{"%c", "id", true},
		{"%c", "idx", false},
		{"x%cy", "xidy", true},
		{"%u-%c", "usr-id", true},
		{"100%", "100%", true},
		{"%x", "%x", true},
		{"%%c", "%id", true},
		{"a", "a", true},
		{"", "", true},
	}
	for _, c := range cases {
		if got := s.levelEq(c.pat, c.level); got != c.want {
			t.Errorf("levelEq(%q, %q) = %v", c.pat, c.level, got)
		}
	}
}
