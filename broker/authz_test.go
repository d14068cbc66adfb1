package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sngate/sngate/broker/auth"
)

// setPw writes a user at bcrypt's minimum cost, fast under -race.
func setPw(t *testing.T, path, user, pw string) {
	t.Helper()
	h, err := auth.HashPasswordCost([]byte(pw), 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.SetPasswordHash(path, user, h); err != nil {
		t.Fatal(err)
	}
}

func TestAuthentication(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	setPw(t, pw, "alice", "secret")
	cfg := testConfig()
	cfg.AllowAnonymous = false
	cfg.PasswordFile = pw
	cfg.CertAsUsername = true
	srv := newServer(t, cfg)
	try := func(u, p, cert string) error {
		_, _, err := srv.Connect(ConnectInfo{ClientID: "c", Username: u, Password: []byte(p), CertSubject: cert}, newSink())
		return err
	}
	mustIs(t, try("", "", ""), ErrNotAuthorized)
	mustIs(t, try("alice", "wrong", ""), ErrBadCredentials)
	mustIs(t, try("bob", "secret", ""), ErrBadCredentials)
	if err := try("alice", "secret", ""); err != nil {
		t.Fatal(err)
	}
	s, _, err := srv.Connect(ConnectInfo{ClientID: "d", CertSubject: "CN=dev"}, newSink())
	if err != nil || s.Username() != "CN=dev" {
		t.Fatalf("cert: %v", err)
	}
	if srv.Stats().AuthFailures != 3 {
		t.Errorf("auth failures %d", srv.Stats().AuthFailures)
	}

	// Reload swaps the users; sessions stay.
	setPw(t, pw, "bob", "pw")
	if err := srv.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := try("bob", "pw", ""); err != nil {
		t.Fatal(err)
	}
	if srv.Stats().SessionsConnected != 2 {
		t.Error("reload dropped sessions")
	}
	// A broken file leaves the old state.
	os.WriteFile(pw, []byte("garbage\n"), 0o600)
	if err := srv.Reload(); err == nil {
		t.Fatal("reload accepted a bad file")
	}
	if err := try("bob", "pw", ""); err != nil {
		t.Fatal(err)
	}
}

func TestAnonymousWithoutPasswordFile(t *testing.T) {
	srv := newServer(t, testConfig())
	s, _, err := srv.Connect(ConnectInfo{ClientID: "c", Username: "anyone"}, newSink())
	if err != nil || s.Username() != "anyone" {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AllowAnonymous = false
	srv2 := newServer(t, cfg)
	_, _, err = srv2.Connect(ConnectInfo{ClientID: "c", Username: "anyone"}, newSink())
	mustIs(t, err, ErrNotAuthorized)
}

func TestACLEnforced(t *testing.T) {
	dir := t.TempDir()
	aclPath := filepath.Join(dir, "acl")
	os.WriteFile(aclPath, []byte(`
topic read status/#
pattern write devices/%c/#
pattern read devices/%c/cmd
`), 0o600)
	cfg := testConfig()
	cfg.ACLFile = aclPath
	srv := newServer(t, cfg)
	s, sink := conn(t, srv, "d1")
	codes := sub(t, s, subQ("status/#", 1), subQ("devices/d1/cmd", 1), subQ("devices/d2/cmd", 1), subQ("$share/g/status/x", 0), subQ("#", 0))
	if string(codes) != string([]byte{1, 1, 0x87, 0, 0x87}) {
		t.Fatalf("codes %x", codes)
	}
	if err := s.Publish(&Message{Topic: "devices/d1/t", Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	mustIs(t, s.Publish(&Message{Topic: "devices/d2/t"}), ErrNotAuthorized)
	mustIs(t, s.Publish(&Message{Topic: "status/x"}), ErrNotAuthorized)
	// Wills are checked at connect.
	_, _, err := srv.Connect(ConnectInfo{ClientID: "d3", Will: &Will{Msg: Message{Topic: "status/d3"}}}, newSink())
	mustIs(t, err, ErrNotAuthorized)
	// Anonymous publishes are checked against the identity; internal ones are not.
	mustIs(t, srv.PublishAnonymous(&Message{Topic: "devices/d9/x"}, "d8"), ErrNotAuthorized)
	if err := srv.PublishAnonymous(&Message{Topic: "devices/d9/x"}, "d9"); err != nil {
		t.Fatal(err)
	}
	if err := srv.PublishAnonymous(&Message{Topic: "status/x", Payload: []byte("ok")}, ""); err != nil {
		t.Fatal(err)
	}
	if d := sink.next(t); d.Msg.Topic != "status/x" {
		t.Fatal(d.Msg.Topic)
	}
	// SetAuth swaps the ACL: allow everything.
	srv.SetAuth(nil, nil)
	if err := s.Publish(&Message{Topic: "status/y"}); err != nil {
		t.Fatal(err)
	}
	if srv.Stats().ACLDenied < 5 {
		t.Errorf("acl denied %d", srv.Stats().ACLDenied)
	}
}

// A client the front end authenticated itself skips the password check and
// AllowAnonymous, but the ACL still applies, with its user name.
func TestAuthenticatedByFrontEnd(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	setPw(t, pw, "alice", "secret")
	acl, err := auth.ParseACL(strings.NewReader(`
user psk-dev1
topic write sensors/dev1/#
pattern write devices/%u/#
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.AllowAnonymous = false
	cfg.PasswordFile = pw
	srv := newServer(t, cfg)
	srv.SetAuth(srv.policy.Load().users, acl)

	// Without the flag, no user name and a wrong password are refused.
	_, _, err = srv.Connect(ConnectInfo{ClientID: "dev1"}, newSink())
	mustIs(t, err, ErrNotAuthorized)
	_, _, err = srv.Connect(ConnectInfo{ClientID: "dev1", Username: "psk-dev1", Password: []byte("x")}, newSink())
	mustIs(t, err, ErrBadCredentials)

	s, _, err := srv.Connect(ConnectInfo{ClientID: "dev1", Username: "psk-dev1", Authenticated: true}, newSink())
	if err != nil {
		t.Fatal(err)
	}
	if s.Username() != "psk-dev1" {
		t.Fatalf("user name %q", s.Username())
	}
	for _, topic := range []string{"sensors/dev1/t", "devices/psk-dev1/t"} {
		if err := s.Publish(&Message{Topic: topic}); err != nil {
			t.Fatalf("%s: %v", topic, err)
		}
	}
	mustIs(t, s.Publish(&Message{Topic: "sensors/dev2/t"}), ErrNotAuthorized)
	mustIs(t, s.Publish(&Message{Topic: "devices/other/t"}), ErrNotAuthorized)
	if codes := sub(t, s, subQ("sensors/dev1/t", 0)); codes[0] != 0x87 {
		t.Fatalf("subscribe without a read rule: %x", codes)
	}

	// Anonymous but vouched for: connects; gets only the anonymous rules.
	a, _, err := srv.Connect(ConnectInfo{ClientID: "plain", Authenticated: true}, newSink())
	if err != nil || a.Username() != "" {
		t.Fatalf("anonymous authenticated: %v", err)
	}
	mustIs(t, a.Publish(&Message{Topic: "sensors/dev1/t"}), ErrNotAuthorized)
	// The will is checked against the ACL too.
	_, _, err = srv.Connect(ConnectInfo{ClientID: "dev1w", Username: "psk-dev1", Authenticated: true,
		Will: &Will{Msg: Message{Topic: "status/dev1"}}}, newSink())
	mustIs(t, err, ErrNotAuthorized)
}
