package transport

import (
	"net/netip"
	"testing"
)

func TestAddrFromAddrPort(t *testing.T) {
	for _, s := range []string{"127.0.0.1:1884", "[::1]:1884", "[2001:db8::7]:65535"} {
		ap := netip.MustParseAddrPort(s)
		a := AddrFromAddrPort(ap)
		got, ok := a.AddrPort()
		if !ok || got != ap {
			t.Fatalf("%s: AddrPort() = %v, %v", s, got, ok)
		}
		if a.String() != ap.String() {
			t.Fatalf("%s: String() = %q", s, a.String())
		}
	}
	mapped := AddrFromAddrPort(netip.MustParseAddrPort("[::ffff:127.0.0.1]:9"))
	if mapped != AddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:9")) {
		t.Fatal("IPv4-mapped address did not unmap to the IPv4 Addr")
	}
}

func TestAddrFromBytesIsNotAnEndpoint(t *testing.T) {
	// Six raw bytes must not read as an IPv4 endpoint.
	a, ok := AddrFromBytes([]byte("serial"))
	if !ok {
		t.Fatal("AddrFromBytes rejected 6 bytes")
	}
	if _, isIP := a.AddrPort(); isIP {
		t.Fatal("raw address reported as an ip:port")
	}
	if a.String() != "73657269616c" {
		t.Fatalf("String() = %q, want hex", a.String())
	}
	if a == AddrFromAddrPort(netip.MustParseAddrPort("115.101.114.105:24940")) {
		t.Fatal("raw address equals the endpoint with the same bytes")
	}
	if _, ok := AddrFromBytes(nil); ok {
		t.Fatal("empty address accepted")
	}
	if _, ok := AddrFromBytes(make([]byte, addrCap+1)); ok {
		t.Fatal("oversize address accepted")
	}
	var zero Addr
	if !zero.IsZero() || zero.Len() != 0 {
		t.Fatal("zero Addr not zero")
	}
}
