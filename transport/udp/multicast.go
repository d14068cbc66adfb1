package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/sngate/sngate/transport"
)

// setupMulticast resolves the discovery group, joins it and starts the
// goroutine that reads SEARCHGW frames sent to it.
func (l *Link) setupMulticast() error {
	group, err := netip.ParseAddrPort(l.cfg.MulticastGroup)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", l.cfg.MulticastGroup)
		if rerr != nil {
			return fmt.Errorf("udp: multicast group %q: %w", l.cfg.MulticastGroup, rerr)
		}
		group = ua.AddrPort()
	}
	group = netip.AddrPortFrom(group.Addr().Unmap(), group.Port())
	l.group = group
	if !group.Addr().IsMulticast() {
		return nil // a unicast "broadcast" destination: nothing to join
	}
	var ifi *net.Interface
	if l.cfg.MulticastInterface != "" {
		ifi, err = net.InterfaceByName(l.cfg.MulticastInterface)
		if err != nil {
			return fmt.Errorf("udp: multicast interface %q: %w", l.cfg.MulticastInterface, err)
		}
	}
	l.setSendOptions(ifi)
	gaddr := net.UDPAddrFromAddrPort(group)
	if group.Port() == l.LocalAddr().Port() {
		// One socket serves both: join the group on it.
		if err := l.join(ifi, gaddr); err != nil {
			return err
		}
		return nil
	}
	network := "udp4"
	if group.Addr().Is6() {
		network = "udp6"
	}
	mc, err := net.ListenMulticastUDP(network, ifi, gaddr)
	if err != nil {
		return fmt.Errorf("udp: join multicast group %v: %w", group, err)
	}
	l.mconn = mc
	l.mdone = make(chan struct{})
	go l.readMulticast()
	return nil
}

// setSendOptions sets the hop limit, interface and loopback of frames the
// link sends to the group. They are best effort: a dual-stack socket may
// refuse some of them, and the OS defaults then apply.
func (l *Link) setSendOptions(ifi *net.Interface) {
	if l.group.Addr().Is4() {
		p := ipv4.NewPacketConn(l.conn)
		_ = p.SetMulticastTTL(l.cfg.MulticastTTL)
		_ = p.SetMulticastLoopback(true)
		if ifi != nil {
			_ = p.SetMulticastInterface(ifi)
		}
		return
	}
	p := ipv6.NewPacketConn(l.conn)
	_ = p.SetMulticastHopLimit(l.cfg.MulticastTTL)
	_ = p.SetMulticastLoopback(true)
	if ifi != nil {
		_ = p.SetMulticastInterface(ifi)
	}
}

func (l *Link) join(ifi *net.Interface, g *net.UDPAddr) error {
	var err error
	if l.group.Addr().Is4() {
		err = ipv4.NewPacketConn(l.conn).JoinGroup(ifi, g)
	} else {
		err = ipv6.NewPacketConn(l.conn).JoinGroup(ifi, g)
	}
	if err != nil {
		return fmt.Errorf("udp: join multicast group %v: %w", g, err)
	}
	return nil
}

// readMulticast queues frames from the group socket for ReadFrom and
// wakes the reader. The queue is bounded; excess frames are dropped.
func (l *Link) readMulticast() {
	defer close(l.mdone)
	scratch := make([]byte, l.mtu+1)
	for {
		n, ap, err := l.mconn.ReadFromUDPAddrPort(scratch)
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.errs.Add(1)
			continue
		}
		if n > l.mtu {
			l.oversize.Add(1)
			continue
		}
		l.mmu.Lock()
		if len(l.mqueue) >= maxMQueue {
			l.mmu.Unlock()
			l.oversize.Add(1)
			continue
		}
		var buf []byte
		if k := len(l.mfree); k > 0 {
			buf = l.mfree[k-1]
			l.mfree = l.mfree[:k-1]
		} else {
			buf = make([]byte, l.mtu)
		}
		buf = buf[:copy(buf, scratch[:n])]
		l.mqueue = append(l.mqueue, mframe{buf: buf, from: transport.AddrFromAddrPort(ap)})
		l.wakeReader()
		l.mmu.Unlock()
	}
}
