package udp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/sngate/sngate/transport"
)

func listen(t *testing.T, cfg Config) *Link {
	t.Helper()
	l, err := Listen(cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func peer(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Skipf("cannot open %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func modes() []struct {
	name    string
	disable bool
} {
	return []struct {
		name    string
		disable bool
	}{{"batch", false}, {"plain", true}}
}

func roundTrip(t *testing.T, network, laddr, paddr string, disable bool) {
	l := listen(t, Config{Addr: laddr, Network: network, DisableBatch: disable})
	c := peer(t, network, paddr)
	dst := net.UDPAddrFromAddrPort(l.LocalAddr())
	if dst.IP.IsUnspecified() {
		dst.IP = net.UDPAddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort()).IP
	}
	const n = 200
	go func() {
		for i := 0; i < n; i++ {
			c.WriteToUDP([]byte(fmt.Sprintf("frame-%03d", i)), dst)
		}
	}()
	want := transport.AddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort())
	buf := make([]byte, 2048)
	for i := 0; i < n; i++ {
		k, from, err := l.ReadFrom(buf)
		if err != nil {
			t.Fatalf("ReadFrom %d: %v", i, err)
		}
		if got, exp := string(buf[:k]), fmt.Sprintf("frame-%03d", i); got != exp {
			t.Fatalf("frame %d = %q, want %q", i, got, exp)
		}
		if from != want {
			t.Fatalf("from = %v, want %v", from, want)
		}
	}
	if err := l.WriteTo([]byte("reply"), want); err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, _, err := c.ReadFromUDP(buf)
	if err != nil || string(buf[:k]) != "reply" {
		t.Fatalf("peer read = %q, %v", buf[:k], err)
	}
	if st := l.Stats(); st.Received != n || st.Sent != 1 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestIPv4(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			roundTrip(t, "udp4", "127.0.0.1:0", "127.0.0.1:0", m.disable)
		})
	}
}

func TestIPv6(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			if _, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
				t.Skipf("no ::1: %v", err)
			}
			roundTrip(t, "udp6", "[::1]:0", "[::1]:0", m.disable)
		})
	}
}

// A dual-stack socket reports IPv4 peers as plain IPv4 addresses and can
// send to them, one by one and in batches.
func TestDualStack(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			roundTrip(t, "udp", ":0", "127.0.0.1:0", m.disable)
			l := listen(t, Config{Addr: ":0", DisableBatch: m.disable})
			c := peer(t, "udp4", "127.0.0.1:0")
			to := transport.AddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort())
			if to.Len() != 6 {
				t.Fatalf("IPv4 addr len = %d", to.Len())
			}
			if _, err := l.WriteBatch([]Datagram{{[]byte("a"), to}, {[]byte("b"), to}}); err != nil {
				t.Fatalf("WriteBatch: %v", err)
			}
			buf := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for _, w := range []string{"a", "b"} {
				k, _, err := c.ReadFromUDP(buf)
				if err != nil || string(buf[:k]) != w {
					t.Fatalf("got %q, %v; want %q", buf[:k], err, w)
				}
			}
		})
	}
}

type got struct {
	data string
	from transport.Addr
}

// Batch and plain reads yield the same frames, drops included.
func TestBatchPlainEquivalence(t *testing.T) {
	var results [2][]got
	var stats [2]Stats
	for mi, m := range modes() {
		l := listen(t, Config{Addr: "127.0.0.1:0", MTU: 100, DisableBatch: m.disable, BatchSize: 7})
		c := peer(t, "udp4", "127.0.0.1:0")
		dst := net.UDPAddrFromAddrPort(l.LocalAddr())
		var sent int
		for i := 0; i < 50; i++ {
			size := (i * 37) % 140 // some exceed the MTU
			p := bytes.Repeat([]byte{byte(i)}, size)
			if _, err := c.WriteToUDP(p, dst); err != nil {
				t.Fatal(err)
			}
			if size <= 100 {
				sent++
			}
		}
		c.WriteToUDP([]byte("end"), dst)
		buf := make([]byte, 200)
		for {
			k, from, err := l.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:k]) == "end" {
				break
			}
			results[mi] = append(results[mi], got{string(buf[:k]), from})
		}
		stats[mi] = l.Stats()
		if len(results[mi]) != sent {
			t.Fatalf("%s: got %d frames, want %d", m.name, len(results[mi]), sent)
		}
	}
	if len(results[0]) != len(results[1]) {
		t.Fatalf("batch %d frames, plain %d", len(results[0]), len(results[1]))
	}
	for i := range results[0] {
		if results[0][i].data != results[1][i].data {
			t.Fatalf("frame %d differs", i)
		}
	}
	if stats[0].Oversize != stats[1].Oversize || stats[0].Oversize == 0 {
		t.Fatalf("oversize batch %d plain %d", stats[0].Oversize, stats[1].Oversize)
	}
	if stats[0].Batches == 0 {
		if (&Link{}).Batching() {
			t.Fatal("no batches counted")
		}
	}
}

func TestOversize(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			l := listen(t, Config{Addr: "127.0.0.1:0", MTU: 64, DisableBatch: m.disable})
			c := peer(t, "udp4", "127.0.0.1:0")
			dst := net.UDPAddrFromAddrPort(l.LocalAddr())
			c.WriteToUDP(make([]byte, 65), dst)   // over the MTU
			c.WriteToUDP(make([]byte, 9000), dst) // far over
			c.WriteToUDP(make([]byte, 40), dst)   // over the caller's buffer below
			c.WriteToUDP(make([]byte, 20), dst)
			buf := make([]byte, 64)
			k, _, err := l.ReadFrom(buf[:32])
			if err != nil || k != 20 {
				t.Fatalf("ReadFrom = %d, %v; want the 20-byte frame", k, err)
			}
			if st := l.Stats(); st.Oversize != 3 {
				t.Fatalf("oversize = %d, want 3", st.Oversize)
			}
			c.WriteToUDP(make([]byte, 64), dst) // exactly the MTU
			if k, _, err = l.ReadFrom(buf); err != nil || k != 64 {
				t.Fatalf("ReadFrom = %d, %v; want 64", k, err)
			}
			if err := l.WriteTo(make([]byte, 65), transport.AddrFromAddrPort(l.LocalAddr())); !errors.Is(err, transport.ErrTooLarge) {
				t.Fatalf("WriteTo oversize: %v", err)
			}
		})
	}
}

func TestCloseUnblocksReadFrom(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			l, err := Listen(Config{Addr: "127.0.0.1:0", DisableBatch: m.disable})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, _, err := l.ReadFrom(make([]byte, 100))
				done <- err
			}()
			time.Sleep(10 * time.Millisecond) // let ReadFrom block; the test holds either way
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("ReadFrom after Close: %v", err)
			}
			if err := l.WriteTo([]byte("x"), transport.AddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:9"))); !errors.Is(err, transport.ErrClosed) {
				t.Fatalf("WriteTo after Close: %v", err)
			}
		})
	}
}

func TestWriteBatch(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			l := listen(t, Config{Addr: "127.0.0.1:0", DisableBatch: m.disable, BatchSize: 16})
			a := peer(t, "udp4", "127.0.0.1:0")
			b := peer(t, "udp4", "127.0.0.1:0")
			aa := transport.AddrFromAddrPort(a.LocalAddr().(*net.UDPAddr).AddrPort())
			ba := transport.AddrFromAddrPort(b.LocalAddr().(*net.UDPAddr).AddrPort())
			var ds []Datagram
			for i := 0; i < 100; i++ {
				to := aa
				if i%2 == 1 {
					to = ba
				}
				ds = append(ds, Datagram{[]byte(fmt.Sprint(i)), to})
			}
			n, err := l.WriteBatch(ds)
			if err != nil || n != 100 {
				t.Fatalf("WriteBatch = %d, %v", n, err)
			}
			buf := make([]byte, 16)
			for i := 0; i < 100; i++ {
				c := a
				if i%2 == 1 {
					c = b
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				k, _, err := c.ReadFromUDP(buf)
				if err != nil || string(buf[:k]) != fmt.Sprint(i) {
					t.Fatalf("datagram %d: %q, %v", i, buf[:k], err)
				}
			}
			if !m.disable && l.Batching() {
				if st := l.Stats(); st.SendBatch == 0 || st.SendBatch > 10 {
					t.Fatalf("sendmmsg calls = %d", st.SendBatch)
				}
			}
		})
	}
}

func TestBroadcastUnicastGroup(t *testing.T) {
	c := peer(t, "udp4", "127.0.0.1:0")
	l := listen(t, Config{Addr: "127.0.0.1:0", MulticastGroup: c.LocalAddr().String()})
	if err := l.Broadcast([]byte("gwinfo")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:k]) != "gwinfo" {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
	if from.Port() != l.LocalAddr().Port() {
		t.Fatalf("broadcast came from %v, want the link's port", from)
	}
	nb := listen(t, Config{Addr: "127.0.0.1:0"})
	if err := nb.Broadcast([]byte("x")); !errors.Is(err, transport.ErrNoBroadcast) {
		t.Fatalf("Broadcast without group: %v", err)
	}
}

// TestMulticast joins a real group. Multicast may be unavailable in a
// sandbox; the test skips then.
func TestMulticast(t *testing.T) {
	probe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skip(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	group := fmt.Sprintf("225.1.1.1:%d", port)
	l, err := Listen(Config{Addr: "0.0.0.0:0", MulticastGroup: group})
	if err != nil {
		t.Skipf("multicast unavailable: %v", err)
	}
	defer l.Close()
	// A second link in the group stands for a client listening for GWINFO.
	other, err := Listen(Config{Addr: "0.0.0.0:0", MulticastGroup: group})
	if err != nil {
		t.Skipf("multicast unavailable: %v", err)
	}
	defer other.Close()
	res := make(chan got, 4)
	go func() {
		buf := make([]byte, 64)
		for {
			k, from, err := other.ReadFrom(buf)
			if err != nil {
				return
			}
			res <- got{string(buf[:k]), from}
		}
	}()
	if err := l.Broadcast([]byte("searchgw")); err != nil {
		t.Skipf("multicast send unavailable: %v", err)
	}
	select {
	case g := <-res:
		if g.data != "searchgw" {
			t.Fatalf("got %q", g.data)
		}
		if ap, _ := g.from.AddrPort(); ap.Port() != l.LocalAddr().Port() {
			t.Fatalf("from %v", g.from)
		}
	case <-time.After(2 * time.Second):
		t.Skip("multicast not delivered on this host")
	}
}
