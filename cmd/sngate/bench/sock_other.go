//go:build !linux

package bench

import (
	"net/netip"
	"runtime"
)

// The engine needs epoll, recvmmsg and sendmmsg: elsewhere these stubs
// make Run return ErrUnsupported.

func defaultWorkers() int { return runtime.GOMAXPROCS(0) }

func fdLimit() int { return 1024 }

func openSock(netip.Addr, netip.AddrPort, int) (int, error) { return -1, ErrUnsupported }

func closeSock(int) {}

const recvSlot = 2048

type batchIO struct{}

func newBatchIO(int) *batchIO { return &batchIO{} }

var errAgain = ErrUnsupported

func (b *batchIO) send(int, [][]byte) (int, error) { return 0, ErrUnsupported }

func (b *batchIO) recv(int) (int, error) { return 0, ErrUnsupported }

func (b *batchIO) msg(int) ([]byte, bool) { return nil, false }

func (b *batchIO) size() int { return 1 }

type poller struct{}

func newPoller(int) (*poller, error) { return nil, ErrUnsupported }

func (p *poller) add(int, int32) error { return ErrUnsupported }

func (p *poller) wait(int, []int32) ([]int32, error) { return nil, ErrUnsupported }

func (p *poller) close() {}
