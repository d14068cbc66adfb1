//go:build linux

package udp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sngate/sngate/transport"
)

// msgTrunc is the msg_flags bit the kernel sets on a truncated datagram.
const msgTrunc = unix.MSG_TRUNC

// truncUnknown is false: Linux reports truncation in msg_flags.
const truncUnknown = false

// batcher receives up to len(hdrs) datagrams per recvmmsg call into
// buffers it owns and reuses. It is used by the single ReadFrom goroutine.
type batcher struct {
	rc     syscall.RawConn
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6
	slab   []byte
	bufLen int
	next   int
	count  int
	err    error
	readFn func(fd uintptr) bool // method value kept so fill does not allocate
}

func newBatcher(c *net.UDPConn, size, mtu int) (*batcher, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	// One spare byte per buffer is not needed: MSG_TRUNC tells truncation.
	b := &batcher{
		rc:     rc,
		hdrs:   make([]unix.Mmsghdr, size),
		iovs:   make([]unix.Iovec, size),
		names:  make([]unix.RawSockaddrInet6, size),
		slab:   make([]byte, size*mtu),
		bufLen: mtu,
	}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.slab[i*mtu]
		b.iovs[i].SetLen(mtu)
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	b.readFn = b.recv
	return b, nil
}

// fill blocks (through the runtime poller) until at least one datagram
// is available, then reads as many as are queued, up to the batch size.
func (b *batcher) fill() error {
	for i := range b.hdrs {
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	b.err = nil
	b.count, b.next = 0, 0
	if err := b.rc.Read(b.readFn); err != nil {
		return err
	}
	return b.err
}

func (b *batcher) recv(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.count = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			b.err = fmt.Errorf("recvmmsg: %w", e)
			return true
		}
	}
}

// take returns the next datagram of the batch. data aliases the batch
// buffer until the next fill.
func (b *batcher) take() (data []byte, from transport.Addr, trunc bool) {
	i := b.next
	b.next++
	h := &b.hdrs[i]
	n := int(h.Len)
	if n > b.bufLen {
		n = b.bufLen
	}
	data = b.slab[i*b.bufLen : i*b.bufLen+n]
	trunc = h.Hdr.Flags&unix.MSG_TRUNC != 0
	from = sockaddrToAddr(&b.names[i])
	return data, from, trunc
}

func sockaddrToAddr(sa *unix.RawSockaddrInet6) transport.Addr {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:])
		return transport.AddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), port))
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return transport.AddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port))
	}
	return transport.Addr{}
}

// sendBatcher sends many datagrams per sendmmsg call. Its buffers are
// shared, so send holds a mutex.
type sendBatcher struct {
	mu      sync.Mutex
	rc      syscall.RawConn
	family  int
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6
	pending []unix.Mmsghdr // the slice of hdrs still to send
	sent    int
	err     error
	writeFn func(fd uintptr) bool
}

func newSendBatcher(c *net.UDPConn, size int) (*sendBatcher, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var family int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		sa, serr = unix.Getsockname(int(fd))
		if _, ok := sa.(*unix.SockaddrInet4); ok {
			family = unix.AF_INET
		} else {
			family = unix.AF_INET6
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, fmt.Errorf("getsockname: %w", serr)
	}
	s := &sendBatcher{
		rc:     rc,
		family: family,
		hdrs:   make([]unix.Mmsghdr, size),
		iovs:   make([]unix.Iovec, size),
		names:  make([]unix.RawSockaddrInet6, size),
	}
	for i := range s.hdrs {
		h := &s.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&s.names[i]))
		h.Iov = &s.iovs[i]
		h.SetIovlen(1)
	}
	s.writeFn = s.write
	return s, nil
}

var errFamily = errors.New("address family does not match the socket")

// putName encodes a peer address into a sockaddr for this socket.
func (s *sendBatcher) putName(i int, a transport.Addr) (uint32, error) {
	ap, ok := a.AddrPort()
	if !ok {
		return 0, fmt.Errorf("%v: not a UDP address", a)
	}
	sa := &s.names[i]
	*sa = unix.RawSockaddrInet6{}
	ip := ap.Addr()
	if s.family == unix.AF_INET {
		if !ip.Is4() {
			return 0, fmt.Errorf("%v: %w", a, errFamily)
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		s4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s4.Port))[:], ap.Port())
		s4.Addr = ip.As4()
		return unix.SizeofSockaddrInet4, nil
	}
	sa.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], ap.Port())
	sa.Addr = ip.As16() // IPv4 becomes v4-mapped on a dual-stack socket
	return unix.SizeofSockaddrInet6, nil
}

// send transmits ds and returns how many datagrams went out and how many
// system calls it took.
func (s *sendBatcher) send(ds []Datagram) (sent, calls int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(ds) > 0 {
		k := min(len(ds), len(s.hdrs))
		for i := 0; i < k; i++ {
			nl, err := s.putName(i, ds[i].Addr)
			if err != nil {
				return sent, calls, err
			}
			h := &s.hdrs[i]
			h.Hdr.Namelen = nl
			h.Len = 0
			if d := ds[i].Data; len(d) > 0 {
				s.iovs[i].Base = &d[0]
			} else {
				s.iovs[i].Base = nil
			}
			s.iovs[i].SetLen(len(ds[i].Data))
		}
		s.pending = s.hdrs[:k]
		for len(s.pending) > 0 {
			s.sent, s.err = 0, nil
			if err := s.rc.Write(s.writeFn); err != nil {
				s.clear()
				return sent, calls, err
			}
			calls++
			if s.err != nil {
				s.clear()
				return sent, calls, s.err
			}
			sent += s.sent
			s.pending = s.pending[s.sent:]
		}
		ds = ds[k:]
	}
	s.clear()
	return sent, calls, nil
}

// clear drops the references to the caller's buffers.
func (s *sendBatcher) clear() {
	for i := range s.iovs {
		s.iovs[i].Base = nil
	}
	s.pending = nil
}

func (s *sendBatcher) write(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.pending[0])),
			uintptr(len(s.pending)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			s.sent = int(n)
			return true
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			s.err = fmt.Errorf("sendmmsg: %w", e)
			return true
		}
	}
}
