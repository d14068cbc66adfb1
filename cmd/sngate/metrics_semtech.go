package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sngate/sngate/transport/semtech"
)

// collectSemtech exposes a packet-forwarder link: frames, drops, per-node
// signal and per-forwarder airtime.
func (m *collector) collectSemtech(ch chan<- prometheus.Metric, l *semtech.Link) {
	name := l.Name()
	s := l.Stats()
	m.linkFrames.emit(ch, float64(s.RxFrames), name, "semtech", "in")
	m.linkFrames.emit(ch, float64(s.TxSent), name, "semtech", "out")
	for reason, v := range map[string]uint64{
		"rx_queue_full": s.RxDropped, "too_long": s.RxTooLong, "crc_bad": s.RxCRCBad,
		"not_lora": s.RxNotLoRa, "lorawan": s.RxLoRaWAN, "other_network": s.RxOtherNetwork,
		"bad_header": s.RxBadHeader, "duplicate": s.RxDuplicates, "bad_packet": s.BadPacket + s.UnknownVersion,
		"bad_json": s.BadJSON + s.BadData, "refused_forwarder": s.Refused,
		"congested": s.TxCongested, "no_route": s.TxNoRoute, "expired": s.TxExpired,
		"superseded": s.TxSuperseded, "tx_ack_error": s.TxAckTooLate + s.TxAckTooEarly +
			s.TxAckCollisionPacket + s.TxAckCollisionBeacon + s.TxAckTxFreq + s.TxAckTxPower +
			s.TxAckGPSUnlocked + s.TxAckOther,
	} {
		m.linkDropped.emit(ch, float64(v), name, "semtech", reason)
	}
	for _, n := range l.Nodes() {
		node := strconv.Itoa(int(n.Node))
		m.radioRSSI.emit(ch, float64(n.RSSI), name, node)
		m.radioSNR.emit(ch, n.SNR, name, node)
	}
	for _, f := range l.Forwarders() {
		var used, limit float64
		for _, b := range f.Bands {
			used += b.Used.Seconds()
			limit += b.Limit.Seconds()
		}
		m.airtimeUsed.emit(ch, used, name+"/"+f.EUI)
		m.airtimeLimit.emit(ch, limit, name+"/"+f.EUI)
	}
}
