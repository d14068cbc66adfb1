//go:build !linux

package listeners

// parker is not implemented here: idle connections keep their goroutine.
type parker struct{}

func getParker() *parker { return nil }

func (p *parker) arm(*conn) bool { return false }

func (p *parker) forget(uint64) {}
