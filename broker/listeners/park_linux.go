//go:build linux

package listeners

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
)

// parker watches parked connections with one epoll instance: an idle
// plain-TCP connection gives up its goroutine and is resumed in a new one
// when its socket becomes readable (or its keep alive runs out, or it is
// closed). One parker serves every listener of the process.
type parker struct {
	epfd  int
	mu    sync.Mutex
	conns map[uint64]*conn
}

var (
	parkerOnce sync.Once
	theParker  *parker
	parkIDs    atomic.Uint64
)

// getParker returns the process's parker, starting it on first use; nil
// if epoll is not available.
func getParker() *parker {
	parkerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		theParker = &parker{epfd: fd, conns: make(map[uint64]*conn)}
		go theParker.loop()
	})
	return theParker
}

// arm registers c (which holds c.mu and is parked) for one readiness
// event. It reports false if the socket could not be watched.
func (p *parker) arm(c *conn) bool {
	if c.parkID == 0 {
		c.parkID = parkIDs.Add(1)
	}
	id := c.parkID
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	p.mu.Lock()
	p.conns[id] = c
	p.mu.Unlock()
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(err, syscall.ENOENT) {
			err = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if cerr != nil || err != nil {
		p.forget(id)
		return false
	}
	return true
}

// forget drops the registration of a connection that woke up.
func (p *parker) forget(id uint64) {
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
}

func (p *parker) loop() {
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// Not expected; stop parking rather than spin. Parked
			// connections still wake on close and keep alive.
			return
		}
		for i := 0; i < n; i++ {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			p.mu.Lock()
			c := p.conns[id]
			delete(p.conns, id)
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}
