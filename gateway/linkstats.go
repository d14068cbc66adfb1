package gateway

import (
	"sync/atomic"

	"github.com/sngate/sngate/sn"
)

// LinkStats are the counters and gauges of one link, for metrics by link
// and QoS.
type LinkStats struct {
	// Index is the link's position in the links given to New; Name is
	// its Name() (which need not be unique).
	Index int
	Name  string

	// Gauges: clients bound to the link (in any state), of which active
	// or awake, and asleep. A client counts on the link it last
	// connected or woke from.
	Clients int64
	Active  int64
	Asleep  int64

	// PublishIn counts the PUBLISH frames received on the link, by QoS,
	// indexed by QoSIndex: [0] QoS -1, [1] QoS 0, [2] QoS 1, [3] QoS 2.
	// It counts frames as they arrive, whatever the broker makes of them
	// (refusals are in Stats' Reject* counters, QoS 2 resends included).
	PublishIn [4]uint64
	// PublishOut counts the PUBLISH sent to clients on the link (first
	// transmissions, as Stats.PublishOut), indexed by QoS 0, 1, 2.
	PublishOut [3]uint64
}

// QoSIndex is the index of an MQTT-SN QoS in LinkStats.PublishIn: 0 for
// QoS -1, then 1, 2 and 3 for QoS 0, 1 and 2.
func QoSIndex(q sn.QoS) int { return int(q+1) & 3 }

// linkCounters back LinkStats with atomics, bumped on the hot path.
type linkCounters struct {
	clients, active, asleep atomic.Int64
	publishIn               [4]atomic.Uint64
	publishOut              [3]atomic.Uint64
}

// countIn counts a PUBLISH received on ls.
func (ls *linkState) countIn(q sn.QoS) { ls.ctr.publishIn[QoSIndex(q)].Add(1) }

// countOut counts a PUBLISH sent on ls with broker QoS q (0 to 2).
func (ls *linkState) countOut(q byte) {
	if ls != nil {
		ls.ctr.publishOut[min(q, 2)].Add(1)
	}
}

// countLinkState keeps the state gauges of link ls.
func countLinkState(ls *linkState, s State, d int64) {
	if ls == nil {
		return
	}
	switch s {
	case StateActive, StateAwake:
		ls.ctr.active.Add(d)
	case StateAsleep:
		ls.ctr.asleep.Add(d)
	}
}

// LinkStats returns a snapshot of each link's counters, in the order of
// the links given to New.
func (g *Gateway) LinkStats() []LinkStats {
	out := make([]LinkStats, len(g.links))
	for i, ls := range g.links {
		c := &ls.ctr
		s := &out[i]
		s.Index, s.Name = ls.idx, ls.name
		s.Clients, s.Active, s.Asleep = c.clients.Load(), c.active.Load(), c.asleep.Load()
		for q := range c.publishIn {
			s.PublishIn[q] = c.publishIn[q].Load()
		}
		for q := range c.publishOut {
			s.PublishOut[q] = c.publishOut[q].Load()
		}
	}
	return out
}
