package main

// A net.Conn over a serial radio link, so that sn/client can reach a
// gateway through a modem or bridge (sngate pub/sub --serial).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/serial"
)

// linkConn is a connected datagram conn to one peer of a transport.Link.
// Frames from other peers are ignored. Deadlines are not supported (the
// MQTT-SN client does not use them).
type linkConn struct {
	l    transport.Link
	peer transport.Addr
}

// Read returns the next frame from the peer.
func (c *linkConn) Read(p []byte) (int, error) {
	for {
		n, from, err := c.l.ReadFrom(p)
		if err != nil {
			return 0, err
		}
		if from == c.peer {
			return n, nil
		}
	}
}

// Write sends one frame to the peer.
func (c *linkConn) Write(p []byte) (int, error) {
	if err := c.l.WriteTo(p, c.peer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close closes the link.
func (c *linkConn) Close() error { return c.l.Close() }

// LocalAddr names the link.
func (c *linkConn) LocalAddr() net.Addr { return radioAddr("local:" + c.l.Name()) }

// RemoteAddr names the peer.
func (c *linkConn) RemoteAddr() net.Addr { return radioAddr(c.l.Name() + ":" + c.peer.String()) }

// SetDeadline is not supported.
func (c *linkConn) SetDeadline(time.Time) error { return errNoDeadline }

// SetReadDeadline is not supported.
func (c *linkConn) SetReadDeadline(time.Time) error { return errNoDeadline }

// SetWriteDeadline is not supported.
func (c *linkConn) SetWriteDeadline(time.Time) error { return errNoDeadline }

var errNoDeadline = errors.New("serial radio conn: deadlines are not supported")

// radioAddr is a net.Addr for a radio peer.
type radioAddr string

// Network returns "radio".
func (a radioAddr) Network() string { return "radio" }

// String returns the address text.
func (a radioAddr) String() string { return string(a) }

// dialSerial opens a serial link of the given kind and returns a conn to
// the gateway's address on it.
func dialSerial(ctx context.Context, dev, kind string, baud int, addr string, wait time.Duration) (net.Conn, error) {
	var peer transport.Addr
	switch kind {
	case "slip", "cobs":
		if addr != "" {
			return nil, usagef("--radio-addr: a %s link has one peer, the other end of the wire", kind)
		}
		peer = serial.BridgeAddr()
	case "xbee":
		var v uint64
		if addr != "" {
			var err error
			v, err = strconv.ParseUint(strings.TrimPrefix(strings.ToLower(addr), "0x"), 16, 64)
			if err != nil {
				return nil, usagef("--radio-addr %q: want a 64-bit hex XBee address", addr)
			}
		}
		peer = serial.XBeeAddr(v)
	case "loralink":
		var v uint64
		if addr != "" {
			var err error
			v, err = strconv.ParseUint(addr, 0, 8)
			if err != nil {
				return nil, usagef("--radio-addr %q: want a LoRaLink node number 0..255", addr)
			}
		}
		peer = serial.LoRaLinkAddr(uint8(v))
	case "rn2483", "rak":
		return nil, usagef("--radio %s: the serial link speaks the gateway side of the raw-LoRa header; a %s node needs its own firmware", kind, kind)
	default:
		return nil, usagef("--radio %q: want slip, cobs, xbee or loralink", kind)
	}
	up := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var cause error
	l, err := serial.Open(serial.Config{Kind: serial.Kind(kind), Device: dev, Baud: baud,
		OnPortState: func(ev serial.PortEvent) {
			if ev.Up {
				once.Do(func() { close(up) })
				return
			}
			mu.Lock()
			cause = ev.Err
			mu.Unlock()
		}})
	if err != nil {
		return nil, usagef("--serial %s: %w", dev, err)
	}
	// The link opens the device in the background; wait until it is open
	// so that the first frame is not refused.
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-up:
		return &linkConn{l: l, peer: peer}, nil
	case <-ctx.Done():
		_ = l.Close()
		return nil, ctx.Err()
	case <-t.C:
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		return nil, fmt.Errorf("open %s: %w", dev, cmpErr(cause))
	}
}

// cmpErr names a device failure that left no cause.
func cmpErr(err error) error {
	if err == nil {
		return errors.New("device did not open")
	}
	return err
}
