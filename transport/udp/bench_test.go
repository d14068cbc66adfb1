package udp

import (
	"net"
	"sync"
	"testing"

	"github.com/sngate/sngate/transport"
)

// flood sends 32-byte datagrams to dst with sendmmsg until stop closes.
func flood(b *testing.B, dst transport.Addr, stop chan struct{}, wg *sync.WaitGroup) {
	s, err := Listen(Config{Addr: "127.0.0.1:0", WriteBuffer: 4 << 20})
	if err != nil {
		b.Fatal(err)
	}
	ds := make([]Datagram, 64)
	for i := range ds {
		ds[i] = Datagram{Data: make([]byte, 32), Addr: dst}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer s.Close()
		for {
			select {
			case <-stop:
				return
			default:
			}
			s.WriteBatch(ds)
		}
	}()
}

func report(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dgrams/s")
}

// BenchmarkReadPlainUDPConn is the baseline: a net.UDPConn read loop.
func BenchmarkReadPlainUDPConn(b *testing.B) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 20)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flood(b, transport.AddrFromAddrPort(c.LocalAddr().(*net.UDPAddr).AddrPort()), stop, &wg)
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
	report(b)
	close(stop)
	wg.Wait()
}

// BenchmarkLinkRead measures ReadFrom with recvmmsg batches and without.
func BenchmarkLinkRead(b *testing.B) {
	for _, m := range []struct {
		name    string
		disable bool
	}{{"batch", false}, {"plain", true}} {
		b.Run(m.name, func(b *testing.B) {
			l, err := Listen(Config{Addr: "127.0.0.1:0", DisableBatch: m.disable, ReadBuffer: 4 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			flood(b, transport.AddrFromAddrPort(l.LocalAddr()), stop, &wg)
			buf := make([]byte, 1500)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := l.ReadFrom(buf); err != nil {
					b.Fatal(err)
				}
			}
			report(b)
			close(stop)
			wg.Wait()
		})
	}
}

// BenchmarkLinkWrite measures sending: WriteTo one by one, WriteBatch in
// groups of 64, and a plain net.UDPConn for comparison.
func BenchmarkLinkWrite(b *testing.B) {
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	ap := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	dst := transport.AddrFromAddrPort(ap)
	p := make([]byte, 32)
	b.Run("UDPConn", func(b *testing.B) {
		c, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		defer c.Close()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			c.WriteToUDPAddrPort(p, ap)
		}
		report(b)
	})
	b.Run("WriteTo", func(b *testing.B) {
		l, _ := Listen(Config{Addr: "127.0.0.1:0"})
		defer l.Close()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			l.WriteTo(p, dst)
		}
		report(b)
	})
	b.Run("WriteBatch", func(b *testing.B) {
		l, _ := Listen(Config{Addr: "127.0.0.1:0"})
		defer l.Close()
		ds := make([]Datagram, 64)
		for i := range ds {
			ds[i] = Datagram{Data: p, Addr: dst}
		}
		b.ReportAllocs()
		for i := 0; i < b.N; i += len(ds) {
			l.WriteBatch(ds)
		}
		report(b)
	})
}
