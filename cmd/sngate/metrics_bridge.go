package main

// Metrics and $SYS gauges of the bridge and the store.

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sngate/sngate/broker/bridge"
	"github.com/sngate/sngate/broker/store"
)

// bridgeMetrics describe the bridge's statistics.
type bridgeMetrics struct {
	state, version, queued, messages, dropped          metric
	connects, reconnects, failures                     metric
	transparentClients, transparentRejected, loopDrops metric
}

func newBridgeMetrics() bridgeMetrics {
	return bridgeMetrics{
		state:               newMetric("bridge_upstream_state", "State of the aggregate upstream link: 1 for the current state.", gauge, "state"),
		version:             newMetric("bridge_upstream_protocol_version", "MQTT version of the connected aggregate link (5 or 4), 0 while not connected.", gauge),
		queued:              newMetric("bridge_queued_messages", "Messages waiting for upstream (the bridge session's queue and in-flight messages, transparent queues).", gauge),
		messages:            newMetric("bridge_messages_total", "Messages acknowledged upstream (sent) and handed to the local broker from upstream (received).", counter, "direction"),
		dropped:             newMetric("bridge_dropped_messages_total", "Messages the bridge gave up: refused, QoS 0 lost with the link, no matching rule, transparent queue full.", counter),
		loopDrops:           newMetric("bridge_loop_drops_total", "Messages dropped by loop prevention (origin mark, MQTT 3.1.1 echo rule).", counter),
		connects:            newMetric("bridge_connects_total", "Successful upstream connections.", counter),
		reconnects:          newMetric("bridge_reconnects_total", "Upstream connections after a lost link.", counter),
		failures:            newMetric("bridge_connect_failures_total", "Failed upstream connection attempts.", counter),
		transparentClients:  newMetric("bridge_transparent_clients", "MQTT-SN clients mirrored upstream (transparent mode), by link state.", gauge, "state"),
		transparentRejected: newMetric("bridge_transparent_rejected_total", "MQTT-SN clients not mirrored (transparent.max_clients).", counter),
	}
}

// bridgeStates are the values of the state label.
var bridgeStates = []bridge.State{bridge.StateIdle, bridge.StateConnecting, bridge.StateConnected, bridge.StateDown, bridge.StateClosed}

func (b *bridgeMetrics) collect(ch chan<- prometheus.Metric, s bridge.Stats) {
	for _, st := range bridgeStates {
		v := 0.0
		if s.Upstream == st {
			v = 1
		}
		b.state.emit(ch, v, st.String())
	}
	b.version.emit(ch, float64(s.ProtocolVersion))
	b.queued.emit(ch, float64(s.Queued))
	b.messages.emit(ch, float64(s.Sent), "sent")
	b.messages.emit(ch, float64(s.Received), "received")
	b.dropped.emit(ch, float64(s.Dropped))
	b.loopDrops.emit(ch, float64(s.LoopDrops))
	b.connects.emit(ch, float64(s.Connects))
	b.reconnects.emit(ch, float64(s.Reconnects))
	b.failures.emit(ch, float64(s.ConnectFailures))
	b.transparentClients.emit(ch, float64(s.TransparentClients), "total")
	b.transparentClients.emit(ch, float64(s.TransparentConnected), "connected")
	b.transparentRejected.emit(ch, float64(s.TransparentRejected))
}

// storeMetrics describe the store's statistics.
type storeMetrics struct {
	commits, changes, commitSeconds, maxBatch, fileBytes metric
}

func newStoreMetrics() storeMetrics {
	return storeMetrics{
		commits:       newMetric("store_commits_total", "Store transactions committed (each one disk sync).", counter),
		changes:       newMetric("store_changes_total", "Changes written to the store.", counter),
		commitSeconds: newMetric("store_commit_seconds_total", "Time spent committing: writes and fsyncs.", counter),
		maxBatch:      newMetric("store_max_batch_changes", "Largest number of changes group-committed in one transaction.", gauge),
		fileBytes:     newMetric("store_file_bytes", "Size of the store file.", gauge),
	}
}

func (m *storeMetrics) collect(ch chan<- prometheus.Metric, s store.Stats) {
	m.commits.emit(ch, float64(s.Commits))
	m.changes.emit(ch, float64(s.Changes))
	m.commitSeconds.emit(ch, s.CommitDur.Seconds())
	m.maxBatch.emit(ch, float64(s.MaxBatch))
	m.fileBytes.emit(ch, float64(s.FileSize))
}

// bridgeGauges are the bridge's $SYS/sngate/bridge/... values.
func bridgeGauges(b *bridge.Bridge) []sysGauge {
	st := func(f func(bridge.Stats) int64) func() int64 {
		return func() int64 { return f(b.Stats()) }
	}
	return []sysGauge{
		{"bridge/connected", st(func(s bridge.Stats) int64 {
			if s.Upstream == bridge.StateConnected {
				return 1
			}
			return 0
		})},
		{"bridge/queued", st(func(s bridge.Stats) int64 { return s.Queued })},
		{"bridge/sent", st(func(s bridge.Stats) int64 { return int64(s.Sent) })},
		{"bridge/received", st(func(s bridge.Stats) int64 { return int64(s.Received) })},
		{"bridge/dropped", st(func(s bridge.Stats) int64 { return int64(s.Dropped + s.LoopDrops) })},
		{"bridge/reconnects", st(func(s bridge.Stats) int64 { return int64(s.Reconnects) })},
	}
}
