//go:build !linux

package udp

import (
	"net"

	"github.com/sngate/sngate/transport"
)

// msgTrunc is 0 where truncation is not reported portably; ReadFrom then
// treats a datagram that fills the caller's buffer as possibly truncated.
const msgTrunc = 0

const truncUnknown = true

// batcher is not available on this OS: newBatcher returns nil and the
// link reads one datagram per system call.
type batcher struct{ next, count int }

func newBatcher(*net.UDPConn, int, int) (*batcher, error) { return nil, nil }

func (b *batcher) fill() error { return nil }

func (b *batcher) take() ([]byte, transport.Addr, bool) { return nil, transport.Addr{}, false }

// sendBatcher is not available on this OS.
type sendBatcher struct{}

func newSendBatcher(*net.UDPConn, int) (*sendBatcher, error) { return nil, nil }

func (s *sendBatcher) send([]Datagram) (int, int, error) { return 0, 0, nil }
