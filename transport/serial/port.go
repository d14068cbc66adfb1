package serial

import (
	"errors"
	"fmt"
	"sync"
	"time"

	bugst "go.bug.st/serial"

	"github.com/sngate/sngate/transport"
)

// ErrUnavailable is returned (together with transport.ErrCongested) by
// writes while the device is closed and being reopened.
var ErrUnavailable = errors.New("serial: device unavailable")

// portHandler is what a framer plugs into a port runner. Its methods
// run on the runner's goroutine, except when noted.
type portHandler interface {
	// opened is called after every successful (re)open, before reading.
	opened()
	// data is called with every chunk read.
	data(p []byte)
	// closed is called after the port failed and was closed.
	closed(err error)
}

// portRunner owns one serial device: it opens it, reads it until it
// fails, reports the failure and reopens it with exponential back-off,
// until the link closes.
type portRunner struct {
	l      *Link
	device string
	baud   int
	h      portHandler

	mu      sync.Mutex
	port    bugst.Port // nil while down
	cause   error      // why fail() closed the port
	healthy bool       // the current session did useful work

	wmu sync.Mutex // serialises writes
}

func newPortRunner(l *Link, device string, baud int, h portHandler) *portRunner {
	return &portRunner{l: l, device: device, baud: baud, h: h}
}

// run is the runner's goroutine.
func (r *portRunner) run() {
	defer r.l.wg.Done()
	backoff := r.l.cfg.ReopenMin
	for {
		if r.l.isClosed() {
			return
		}
		p, err := bugst.Open(r.device, &bugst.Mode{BaudRate: r.baud})
		if err != nil {
			r.l.log.Error("serial device open failed", "link", r.l.cfg.Name, "device", r.device, "cause", err, "retry_in", backoff)
			r.l.portEvent(PortEvent{Device: r.device, Err: fmt.Errorf("open: %w", err)})
			if !r.l.wait(backoff) {
				return
			}
			backoff = min(2*backoff, r.l.cfg.ReopenMax)
			continue
		}
		r.mu.Lock()
		if r.l.isClosed() {
			r.mu.Unlock()
			_ = p.Close()
			return
		}
		r.port, r.cause, r.healthy = p, nil, false
		r.mu.Unlock()
		r.l.stats.opens.Add(1)
		r.l.log.Info("serial device open", "link", r.l.cfg.Name, "device", r.device, "baud", r.baud)
		r.l.portEvent(PortEvent{Device: r.device, Up: true})
		r.h.opened()

		err = r.readLoop(p)

		r.mu.Lock()
		r.port = nil
		if r.cause != nil {
			err = r.cause
		}
		healthy := r.healthy
		r.mu.Unlock()
		r.wmu.Lock()
		_ = p.Close()
		r.wmu.Unlock()
		r.h.closed(err)
		if r.l.isClosed() {
			return
		}
		r.l.stats.failures.Add(1)
		if healthy {
			backoff = r.l.cfg.ReopenMin
		}
		r.l.log.Error("serial device failed, reopening", "link", r.l.cfg.Name, "device", r.device, "cause", err, "retry_in", backoff)
		r.l.portEvent(PortEvent{Device: r.device, Err: err})
		if !r.l.wait(backoff) {
			return
		}
		backoff = min(2*backoff, r.l.cfg.ReopenMax)
	}
}

func (r *portRunner) readLoop(p bugst.Port) error {
	buf := make([]byte, 512)
	for {
		n, err := p.Read(buf)
		if n > 0 {
			r.h.data(buf[:n])
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return errors.New("read: device returned no data (unplugged?)")
		}
	}
}

// markHealthy records that the current session works (resets back-off).
func (r *portRunner) markHealthy() {
	r.mu.Lock()
	r.healthy = true
	r.mu.Unlock()
}

// write sends b to the device; safe from any goroutine.
func (r *portRunner) write(b []byte) error {
	r.wmu.Lock()
	r.mu.Lock()
	p := r.port
	if r.cause != nil {
		p = nil // being closed
	}
	r.mu.Unlock()
	if p == nil {
		r.wmu.Unlock()
		return fmt.Errorf("serial %s: %w (%w)", r.device, ErrUnavailable, transport.ErrCongested)
	}
	var werr error
	for len(b) > 0 && werr == nil {
		n, err := p.Write(b)
		switch {
		case err != nil:
			werr = fmt.Errorf("write: %w", err)
		case n <= 0:
			werr = errors.New("write: no progress")
		default:
			b = b[n:]
		}
	}
	r.wmu.Unlock()
	if werr != nil {
		r.fail(werr)
		return fmt.Errorf("serial %s: %w", r.device, werr)
	}
	return nil
}

// fail closes the current port with cause; the runner reopens it. It
// waits for a write in progress, so a write never reaches a descriptor
// number the kernel has reused.
func (r *portRunner) fail(cause error) {
	r.mu.Lock()
	p := r.port
	if p != nil && r.cause == nil {
		r.cause = cause
	}
	r.mu.Unlock()
	if p != nil {
		r.wmu.Lock()
		_ = p.Close()
		r.wmu.Unlock()
	}
}

// shutdown closes the current port for Link.Close.
func (r *portRunner) shutdown() { r.fail(transport.ErrClosed) }

// waitTimer is a helper for back-off waits that end early on Close.
func (l *Link) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}
