package broker

import (
	"testing"
	"unsafe"
)

func TestSizes(t *testing.T) {
	t.Logf("session %d, Session %d, subRecord %d, node %d, inflight %d, qitem %d, Delivery %d",
		unsafe.Sizeof(session{}), unsafe.Sizeof(Session{}), unsafe.Sizeof(subRecord{}), unsafe.Sizeof(node{}),
		unsafe.Sizeof(inflight{}), unsafe.Sizeof(qitem{}), unsafe.Sizeof(Delivery{}))
}
