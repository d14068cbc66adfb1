//go:build !linux

package listeners

// parker has no Linux epoll set here: idle connections keep their goroutine.
type parker struct{}

func getParker() *parker { return nil }

func (p *parker) arm(*conn) bool { return false }

func (p *parker) forget(uint64) {}
