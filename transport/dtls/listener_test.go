package dtls

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/transport"
)

func TestPSKRoundTrip(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	frames := pump(t, l)

	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pingreq); err != nil {
		t.Fatal(err)
	}
	f := recvFrame(ctx, t, frames)
	if !bytes.Equal(f.b, pingreq) {
		t.Fatalf("frame %x, want %x", f.b, pingreq)
	}
	if _, isUDP := f.from.AddrPort(); isUDP {
		t.Fatalf("Addr %s is a UDP endpoint, want an association", f.from)
	}
	id, ok := l.PeerIdentity(f.from)
	if !ok || id != "sensor-1" {
		t.Fatalf("PeerIdentity = %q, %v", id, ok)
	}
	info, _ := l.Peer(f.from)
	if info.Kind != IdentityPSK || info.Remote.Port() != c.LocalAddr().(*net.UDPAddr).AddrPort().Port() {
		t.Fatalf("Peer = %+v", info)
	}
	if err := l.WriteTo(pingresp, f.from); err != nil {
		t.Fatal(err)
	}
	if got := readConn(ctx, t, c); !bytes.Equal(got, pingresp) {
		t.Fatalf("client got %x", got)
	}
	st := l.Stats()
	if st.HandshakesOK != 1 || st.Associations != 1 || st.Pending != 0 || st.Unverified != 0 ||
		st.FramesIn != 1 || st.FramesOut != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCipherSuites(t *testing.T) {
	p := newPKI(t)
	for _, name := range []string{
		"PSK-AES128-CCM8", "PSK-AES128-GCM-SHA256",
		"ECDHE-ECDSA-AES128-CCM8", "ECDHE-ECDSA-AES128-GCM-SHA256",
	} {
		t.Run(name, func(t *testing.T) {
			ctx := testCtx(t)
			cfg := pskConfig()
			cfg.CertFile, cfg.KeyFile = p.serverCert, p.serverKey
			l, _ := startListener(t, cfg)
			frames := pump(t, l)
			cc := ClientConfig{CipherSuites: []string{name}, CAFile: p.ca}
			if strings.HasPrefix(name, "PSK") {
				cc = pskClient()
				cc.CipherSuites = []string{name}
			}
			c, err := Dial(ctx, l.LocalAddr().String(), cc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, _ = c.Write(pingreq)
			f := recvFrame(ctx, t, frames)
			info, _ := l.Peer(f.from)
			want, _ := lookupSuite(name)
			if info.CipherSuite != want.iana {
				t.Fatalf("suite %s, want %s", info.CipherSuite, want.iana)
			}
		})
	}
}

func TestCertificateIdentity(t *testing.T) {
	p := newPKI(t)
	cfg := Config{CertFile: p.serverCert, KeyFile: p.serverKey, CAFile: p.ca, RequireClientCert: true}
	ctx := testCtx(t)
	l, ev := startListener(t, cfg)
	frames := pump(t, l)

	c, err := Dial(ctx, l.LocalAddr().String(), ClientConfig{CAFile: p.ca, CertFile: p.clientCert, KeyFile: p.clientKey})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	id, ok := l.PeerIdentity(f.from)
	info, _ := l.Peer(f.from)
	if !ok || id != "sensor-42" || info.Kind != IdentityCertificate || info.Subject != "CN=sensor-42,O=Acme" {
		t.Fatalf("identity %q %v, info %+v", id, ok, info)
	}

	// No client certificate, and one from another CA: both refused.
	for _, cc := range []ClientConfig{
		{CAFile: p.ca},
		{CAFile: p.ca, CertFile: p.rogueCert, KeyFile: p.rogueKey},
	} {
		if c, err := Dial(ctx, l.LocalAddr().String(), cc); err == nil {
			c.Close()
			t.Fatal("handshake succeeded")
		}
		ev.wait(ctx, t, "failed-auth")
	}
	if st := l.Stats(); st.FailedAuth != 2 || st.HandshakesOK != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOptionalClientCertificate(t *testing.T) {
	p := newPKI(t)
	ctx := testCtx(t)
	l, _ := startListener(t, Config{CertFile: p.serverCert, KeyFile: p.serverKey, CAFile: p.ca})
	frames := pump(t, l)
	c, err := Dial(ctx, l.LocalAddr().String(), ClientConfig{CAFile: p.ca})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	if id, ok := l.PeerIdentity(f.from); ok {
		t.Fatalf("identity %q without client certificate", id)
	}
}

func TestUnknownPSKIdentity(t *testing.T) {
	ctx := testCtx(t)
	l, ev := startListener(t, pskConfig())
	cc := pskClient()
	cc.PSKIdentity = "intruder"
	if c, err := Dial(ctx, l.LocalAddr().String(), cc); err == nil {
		c.Close()
		t.Fatal("handshake succeeded")
	}
	ev.wait(ctx, t, "failed-auth")
	if st := l.Stats(); st.FailedAuth != 1 || st.HandshakesFailed != 1 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLinkErrors(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	frames := pump(t, l)
	if l.Name() != "dtls" || l.MTU() != DefaultMTU {
		t.Fatalf("name %q mtu %d", l.Name(), l.MTU())
	}
	if err := l.Broadcast(pingreq); !errors.Is(err, transport.ErrNoBroadcast) {
		t.Fatalf("Broadcast: %v", err)
	}
	if err := l.WriteTo(pingresp, addrFromID(12345)); !errors.Is(err, ErrNoAssociation) {
		t.Fatalf("WriteTo unknown: %v", err)
	}
	if err := l.WriteTo(pingresp, transport.Addr{}); !errors.Is(err, ErrNoAssociation) {
		t.Fatalf("WriteTo zero: %v", err)
	}
	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	if err := l.WriteTo(make([]byte, l.MTU()+1), f.from); !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("WriteTo oversize: %v", err)
	}
	if err := l.WriteTo(make([]byte, l.MTU()), f.from); err != nil {
		t.Fatalf("WriteTo MTU-sized: %v", err)
	}
	if got := readConn(ctx, t, c); len(got) != l.MTU() {
		t.Fatalf("client got %d bytes", len(got))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.ReadFrom(make([]byte, 10)); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("ReadFrom after Close: %v", err)
	}
	if err := l.WriteTo(pingresp, f.from); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("WriteTo after Close: %v", err)
	}
	// The client learns of the shutdown through close_notify.
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("client read succeeded after server close")
	}
}

func TestReadFromDropsOversizedFrame(t *testing.T) {
	ctx := testCtx(t)
	l, _ := startListener(t, pskConfig())
	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(make([]byte, l.MTU()+1)) // larger than the link MTU
	_, _ = c.Write(make([]byte, 100))       // larger than ReadFrom's buffer
	_, _ = c.Write(pingreq)
	buf := make([]byte, 10)
	n, _, err := l.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], pingreq) {
		t.Fatalf("ReadFrom = %x, %v", buf[:n], err)
	}
	if st := l.Stats(); st.DropTooLarge != 2 {
		t.Fatalf("DropTooLarge = %d", st.DropTooLarge)
	}
}

func TestIdleTimeout(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.IdleTimeout = 50 * time.Millisecond
	l, ev := startListener(t, cfg)
	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev.wait(ctx, t, "idle")
	if _, err := c.Read(make([]byte, 64)); err == nil {
		t.Fatal("client read succeeded after idle close")
	}
	if st := l.Stats(); st.IdleExpired != 1 || st.Associations != 0 || st.PeerClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxAssociations(t *testing.T) {
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.MaxAssociations = 1
	l, ev := startListener(t, cfg)
	c, err := Dial(ctx, l.LocalAddr().String(), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ev.wait(ctx, t, "established")
	p := newRawPeer(t, l)
	p.echo(p.hello(ctx))
	ev.wait(ctx, t, "max-associations")
	if st := l.Stats(); st.DropMaxAssociations != 1 || st.Associations != 1 || st.Pending != 0 || st.Unverified != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A sensor that reboots and handshakes again from the same address
// replaces its old association once it has echoed the cookie
// (RFC 6347, section 4.2.8).
func TestNewHandshakeReplacesAssociation(t *testing.T) {
	ctx := testCtx(t)
	l, ev := startListener(t, pskConfig())
	frames := pump(t, l)

	rc := newRebindConn(t)
	port := rc.port()
	c1, err := Client(ctx, rc, udpAddr(l), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c1.Write(pingreq)
	old := recvFrame(ctx, t, frames).from
	rc.mute()
	_ = c1.Close() // no close_notify reaches the server

	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Client(ctx, pc, udpAddr(l), pskClient())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _ = c2.Write(pingreq)
	cur := recvFrame(ctx, t, frames).from
	if cur == old {
		t.Fatal("new handshake kept the old Addr")
	}
	ev.wait(ctx, t, "established")
	if err := l.WriteTo(pingresp, old); !errors.Is(err, ErrNoAssociation) {
		t.Fatalf("WriteTo old: %v", err)
	}
	if st := l.Stats(); st.Replaced != 1 || st.Associations != 1 || st.PeerClosed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no address":      {PSKs: []PSK{{Identity: "a", Key: testKey}}},
		"no credentials":  {Addr: "127.0.0.1:0"},
		"empty key":       {Addr: "127.0.0.1:0", PSKs: []PSK{{Identity: "a"}}},
		"duplicate":       {Addr: "127.0.0.1:0", PSKs: []PSK{{Identity: "a", Key: testKey}, {Identity: "a", Key: testKey}}},
		"unknown suite":   {Addr: "127.0.0.1:0", PSKs: []PSK{{Identity: "a", Key: testKey}}, CipherSuites: []string{"RC4"}},
		"suite needs key": {Addr: "127.0.0.1:0", PSKs: []PSK{{Identity: "a", Key: testKey}}, CipherSuites: []string{"ECDHE-ECDSA-AES128-CCM8"}},
		"cert no key":     {Addr: "127.0.0.1:0", CertFile: "x.pem"},
		"missing files":   {Addr: "127.0.0.1:0", CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"},
		"require no CA":   {Addr: "127.0.0.1:0", PSKs: []PSK{{Identity: "a", Key: testKey}}, RequireClientCert: true},
		"bad address":     {Addr: "nonsense", PSKs: []PSK{{Identity: "a", Key: testKey}}},
	} {
		if l, err := Listen(cfg); err == nil {
			l.Close()
			t.Errorf("%s: Listen succeeded", name)
		}
	}
}

func TestIPv6(t *testing.T) {
	if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		c.Close()
	}
	ctx := testCtx(t)
	cfg := pskConfig()
	cfg.Addr = "[::1]:0"
	l, _ := startListener(t, cfg)
	frames := pump(t, l)
	cc := pskClient()
	cc.ConnectionID = true
	c, err := Dial(ctx, l.LocalAddr().String(), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write(pingreq)
	f := recvFrame(ctx, t, frames)
	if info, _ := l.Peer(f.from); !info.Remote.Addr().Is6() {
		t.Fatalf("remote %s", info.Remote)
	}
	if err := l.WriteTo(pingresp, f.from); err != nil {
		t.Fatal(err)
	}
	if got := readConn(ctx, t, c); !bytes.Equal(got, pingresp) {
		t.Fatalf("client got %x", got)
	}
}
