package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sngate/sngate/gateway"
)

// gatewayMetrics returns the components.gateway hook for g.
func gatewayMetrics(g *gateway.Gateway) func(*collector, chan<- prometheus.Metric) {
	return func(m *collector, ch chan<- prometheus.Metric) {
		m.collectGateway(ch, g.Stats())
		m.collectGatewayLinks(ch, g.LinkStats())
	}
}

// collectGatewayLinks emits the per-link client gauges and PUBLISH counts.
// A link without a name, or with a name another link has, is labelled by
// its index.
func (m *collector) collectGatewayLinks(ch chan<- prometheus.Metric, links []gateway.LinkStats) {
	seen := make(map[string]int, len(links))
	for _, l := range links {
		seen[l.Name]++
	}
	inQoS := [4]string{"-1", "0", "1", "2"}
	outQoS := [3]string{"0", "1", "2"}
	for _, l := range links {
		link := l.Name
		if link == "" || seen[link] > 1 {
			link = strconv.Itoa(l.Index)
		}
		m.snLinkClients.emit(ch, float64(l.Clients), link, "total")
		m.snLinkClients.emit(ch, float64(l.Active), link, "active")
		m.snLinkClients.emit(ch, float64(l.Asleep), link, "asleep")
		for i, q := range inQoS {
			m.snLinkPublish.emit(ch, float64(l.PublishIn[i]), link, "in", q)
		}
		for i, q := range outQoS {
			m.snLinkPublish.emit(ch, float64(l.PublishOut[i]), link, "out", q)
		}
	}
}

func (m *collector) collectGateway(ch chan<- prometheus.Metric, s gateway.Stats) {
	m.snClients.emit(ch, float64(s.Clients), "total")
	m.snClients.emit(ch, float64(s.Active), "active")
	m.snClients.emit(ch, float64(s.Sleeping), "asleep")
	m.snFrames.emit(ch, float64(s.FramesIn), "in")
	m.snFrames.emit(ch, float64(s.FramesOut), "out")
	m.snPublish.emit(ch, float64(s.PublishIn), "in", "0-2")
	m.snPublish.emit(ch, float64(s.QoSMinus1In), "in", "-1")
	m.snPublish.emit(ch, float64(s.PublishOut), "out", "0-2")
	m.snRetransmits.emit(ch, float64(s.Retransmits))
	for ev, v := range map[string]uint64{
		"connect": s.Connects, "disconnect": s.Disconnects, "lost": s.Lost, "sleep": s.Sleeps,
		"wake": s.Wakes, "rebind": s.Rebinds, "takeover": s.Takeovers, "register": s.Registers,
		"subscribe": s.Subscribes, "unsubscribe": s.Unsubscribes, "will_update": s.WillUpdates,
		"advertise_sent": s.AdvertisesSent, "gwinfo_sent": s.GWInfosSent,
		"searchgw_received": s.SearchGWReceived, "ping_answered": s.PingsAnswered,
		"encapsulated_in": s.EncapsulatedIn, "encapsulated_out": s.EncapsulatedOut,
		"topic_id_recycled": s.TopicIDsRecycled, "binding_overwritten": s.BindingsOverwritten,
		"congestion_deferred": s.CongestionDeferred, "radio_tx_failure": s.TxFailures,
		"radio_tx_failure_resend": s.TxFailureResends,
	} {
		m.snEvents.emit(ch, float64(v), ev)
	}
	for reason, v := range map[string]uint64{
		"max_clients": s.RejectMaxClients, "rate": s.RejectRate, "client_id": s.RejectClientID,
		"allow_list": s.RejectAllowList, "identity": s.RejectIdentity, "broker": s.RejectBroker,
		"topic_id": s.RejectTopicID, "publish": s.RejectPublish, "register": s.RejectRegister,
		"subscribe": s.RejectSubscribe, "qos_minus1": s.RejectQoSMinus1, "forwarder": s.RejectForwarder,
		"delivery_rejected_by_client": s.DeliveryRejected, "link_congestion": s.RejectCongestion,
	} {
		m.snRejected.emit(ch, float64(v), reason)
	}
	for reason, v := range map[string]uint64{
		"malformed": s.Malformed, "inbox_full": s.InboxFull, "unknown_client": s.UnknownClient,
		"unexpected": s.UnexpectedFrames, "delivery_failed": s.DroppedDeliveries,
		"write_error": s.WriteErrors, "link_congested": s.LinkCongested,
	} {
		m.snDropped.emit(ch, float64(v), reason)
	}
}
