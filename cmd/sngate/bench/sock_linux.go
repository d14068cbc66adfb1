//go:build linux

package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// defaultWorkers is the default number of client-driving goroutines.
func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

// fdLimit returns the soft limit on open files (Go raises it to the hard
// limit at start-up).
func fdLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1024
	}
	return int(rl.Cur)
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// openSock opens a non-blocking UDP socket bound to local (if valid) and
// connected to remote, so the kernel filters other senders and sends
// need no address.
func openSock(local netip.Addr, remote netip.AddrPort, rcvbuf int) (int, error) {
	fam := unix.AF_INET
	if !remote.Addr().Is4() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if local.IsValid() {
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(local, 0))); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind %v: %w", local, err)
		}
	}
	if rcvbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if err := unix.Connect(fd, sockaddr(remote)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %v: %w", remote, err)
	}
	return fd, nil
}

func closeSock(fd int) { _ = unix.Close(fd) }

// recvSlot is the size of one receive buffer.
const recvSlot = 2048

// batchIO holds one worker's sendmmsg and recvmmsg headers.
type batchIO struct {
	shdrs []unix.Mmsghdr
	siovs []unix.Iovec
	rhdrs []unix.Mmsghdr
	riovs []unix.Iovec
	rslab []byte
}

func newBatchIO(n int) *batchIO {
	b := &batchIO{
		shdrs: make([]unix.Mmsghdr, n),
		siovs: make([]unix.Iovec, n),
		rhdrs: make([]unix.Mmsghdr, n),
		riovs: make([]unix.Iovec, n),
		rslab: make([]byte, n*recvSlot),
	}
	for i := range b.rhdrs {
		b.riovs[i].Base = &b.rslab[i*recvSlot]
		b.riovs[i].SetLen(recvSlot)
		b.rhdrs[i].Hdr.Iov = &b.riovs[i]
		b.rhdrs[i].Hdr.SetIovlen(1)
		b.shdrs[i].Hdr.Iov = &b.siovs[i]
		b.shdrs[i].Hdr.SetIovlen(1)
	}
	return b
}

// errAgain reports a full socket buffer.
var errAgain = errors.New("socket buffer full")

// send sends frames on a connected socket with as few sendmmsg calls as
// the kernel allows. It returns how many were sent.
func (b *batchIO) send(fd int, frames [][]byte) (int, error) {
	sent := 0
	for sent < len(frames) {
		k := min(len(frames)-sent, len(b.shdrs))
		for i := 0; i < k; i++ {
			f := frames[sent+i]
			b.siovs[i].Base = &f[0]
			b.siovs[i].SetLen(len(f))
		}
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.shdrs[0])),
			uintptr(k), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			sent += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			b.clearSend()
			return sent, errAgain
		default:
			b.clearSend()
			return sent, fmt.Errorf("sendmmsg: %w", e)
		}
	}
	b.clearSend()
	return sent, nil
}

func (b *batchIO) clearSend() {
	for i := range b.siovs {
		b.siovs[i].Base = nil
	}
}

// recv reads the datagrams queued on fd, up to the batch size, without
// blocking. It returns how many it read (0 when none are queued).
func (b *batchIO) recv(fd int) (int, error) {
	for i := range b.rhdrs {
		b.rhdrs[i].Hdr.Flags = 0
		b.rhdrs[i].Len = 0
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&b.rhdrs[0])),
			uintptr(len(b.rhdrs)), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, nil
		default:
			return 0, fmt.Errorf("recvmmsg: %w", e)
		}
	}
}

// size is the most datagrams one recv returns.
func (b *batchIO) size() int { return len(b.rhdrs) }

// msg returns datagram i of the last recv and whether it was truncated.
func (b *batchIO) msg(i int) ([]byte, bool) {
	n := min(int(b.rhdrs[i].Len), recvSlot)
	return b.rslab[i*recvSlot : i*recvSlot+n], b.rhdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
}

// poller is one worker's epoll instance.
type poller struct {
	epfd   int
	events []unix.EpollEvent
}

func newPoller(n int) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create: %w", err)
	}
	return &poller{epfd: fd, events: make([]unix.EpollEvent, n)}, nil
}

// add watches fd for input; tag comes back with its events.
func (p *poller) add(fd int, tag int32) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: tag}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// wait returns the tags of the readable sockets, waiting up to msec
// milliseconds (0: do not wait).
func (p *poller) wait(msec int, tags []int32) ([]int32, error) {
	n, err := unix.EpollWait(p.epfd, p.events, msec)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return tags, nil
		}
		return tags, fmt.Errorf("epoll_wait: %w", err)
	}
	for i := 0; i < n; i++ {
		tags = append(tags, p.events[i].Fd)
	}
	return tags, nil
}

func (p *poller) close() { _ = unix.Close(p.epfd) }
