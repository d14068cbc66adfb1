package semtech

import (
	"sync/atomic"
	"time"
)

// Stats are the link counters, for metrics: plain totals since Listen.
type Stats struct {
	// Datagrams counts UDP datagrams received from forwarders.
	Datagrams uint64
	PushData  uint64 // PUSH_DATA datagrams accepted (and acknowledged)
	PullData  uint64 // PULL_DATA keep-alives accepted (and acknowledged)
	TxAcks    uint64 // TX_ACK datagrams accepted
	// UnknownVersion counts datagrams of a protocol version other than 1
	// or 2; BadPacket counts short ones, unknown or unexpected packet
	// types; Refused counts datagrams of forwarders not in
	// Config.Forwarders.
	UnknownVersion uint64
	BadPacket      uint64
	Refused        uint64
	// BadJSON counts malformed JSON bodies; BadData counts rxpk entries
	// with malformed base64, a size mismatch, or an unusable datr, codr
	// or freq.
	BadJSON uint64
	BadData uint64
	// ForwardersEvicted counts forwarders dropped from a full table.
	ForwardersEvicted uint64

	RxPackets      uint64 // rxpk entries seen
	RxCRCBad       uint64 // entries with stat != 1 (CRC bad or absent)
	RxNotLoRa      uint64 // FSK entries
	RxLoRaWAN      uint64 // LoRaWAN frames (not ours)
	RxOtherNetwork uint64 // frames of another network ID
	RxBadHeader    uint64 // other address-header errors, empty frames
	RxDuplicates   uint64 // copies of an uplink already delivered
	RxFrames       uint64 // frames handed to ReadFrom
	RxDropped      uint64 // frames dropped at a full receive queue
	RxTooLong      uint64 // frames longer than ReadFrom's buffer
	NodesEvicted   uint64 // nodes dropped from a full table

	TxQueued    uint64 // downlinks accepted by WriteTo
	TxCoalesced uint64 // downlinks identical to one already queued
	TxSent      uint64 // PULL_RESP datagrams sent to a node's window
	TxCongested uint64 // downlinks refused by a budget or a full queue
	TxNoRoute   uint64 // downlinks to unknown nodes, or windows without a forwarder
	TxDeferred  uint64 // windows left unused (budget of the window's band, forwarder busy)
	TxExpired   uint64 // downlinks dropped after FrameTTL
	// TxSuperseded counts acknowledgements dropped because the node sent
	// a new uplink before they could go out (see the package doc).
	TxSuperseded uint64
	TxDropped    uint64 // downlinks dropped with an evicted node
	Broadcasts   uint64 // broadcast PULL_RESP datagrams sent (one per forwarder)

	// TxAcked counts TX_ACKs without error. The TxAck* counters split
	// the errors by kind; TxAckCongestion sums the timing and collision
	// ones (TOO_LATE, TOO_EARLY, COLLISION_PACKET, COLLISION_BEACON).
	TxAcked              uint64
	TxAckTooLate         uint64
	TxAckTooEarly        uint64
	TxAckCollisionPacket uint64
	TxAckCollisionBeacon uint64
	TxAckTxFreq          uint64
	TxAckTxPower         uint64
	TxAckGPSUnlocked     uint64
	TxAckOther           uint64
	TxAckCongestion      uint64
	TxAckWarnings        uint64 // TX_ACKs with a "warn" field
	TxAckUnknown         uint64 // TX_ACKs whose token matches no downlink
	// TxFailures counts failures reported (or offered) on TxFailures;
	// FailuresDropped those nobody read in time.
	TxFailures      uint64
	FailuresDropped uint64
}

type counters struct {
	datagrams, pushData, pullData, txAcks                       atomic.Uint64
	unknownVersion, badPacket, refused, badJSON, badData        atomic.Uint64
	fwdEvicted                                                  atomic.Uint64
	rxPackets, rxCRCBad, rxNotLoRa, rxLoRaWAN, rxOtherNetwork   atomic.Uint64
	rxBadHeader, rxDuplicates, rxFrames, rxDropped, rxTooLong   atomic.Uint64
	nodesEvicted                                                atomic.Uint64
	txQueued, txCoalesced, txSent, txCongested, txNoRoute       atomic.Uint64
	txDeferred, txExpired, txDropped, broadcasts, txSuperseded  atomic.Uint64
	txAcked, ackTooLate, ackTooEarly, ackCollPacket, ackCollBcn atomic.Uint64
	ackTxFreq, ackTxPower, ackGPS, ackOther, ackCongestion      atomic.Uint64
	ackWarn, ackUnknown, txFailures, failuresDropped            atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Datagrams: c.datagrams.Load(), PushData: c.pushData.Load(), PullData: c.pullData.Load(), TxAcks: c.txAcks.Load(),
		UnknownVersion: c.unknownVersion.Load(), BadPacket: c.badPacket.Load(), Refused: c.refused.Load(),
		BadJSON: c.badJSON.Load(), BadData: c.badData.Load(), ForwardersEvicted: c.fwdEvicted.Load(),
		RxPackets: c.rxPackets.Load(), RxCRCBad: c.rxCRCBad.Load(), RxNotLoRa: c.rxNotLoRa.Load(),
		RxLoRaWAN: c.rxLoRaWAN.Load(), RxOtherNetwork: c.rxOtherNetwork.Load(), RxBadHeader: c.rxBadHeader.Load(),
		RxDuplicates: c.rxDuplicates.Load(), RxFrames: c.rxFrames.Load(), RxDropped: c.rxDropped.Load(),
		RxTooLong: c.rxTooLong.Load(), NodesEvicted: c.nodesEvicted.Load(),
		TxQueued: c.txQueued.Load(), TxCoalesced: c.txCoalesced.Load(), TxSent: c.txSent.Load(),
		TxCongested: c.txCongested.Load(), TxNoRoute: c.txNoRoute.Load(), TxDeferred: c.txDeferred.Load(),
		TxExpired: c.txExpired.Load(), TxSuperseded: c.txSuperseded.Load(), TxDropped: c.txDropped.Load(), Broadcasts: c.broadcasts.Load(),
		TxAcked: c.txAcked.Load(), TxAckTooLate: c.ackTooLate.Load(), TxAckTooEarly: c.ackTooEarly.Load(),
		TxAckCollisionPacket: c.ackCollPacket.Load(), TxAckCollisionBeacon: c.ackCollBcn.Load(),
		TxAckTxFreq: c.ackTxFreq.Load(), TxAckTxPower: c.ackTxPower.Load(), TxAckGPSUnlocked: c.ackGPS.Load(),
		TxAckOther: c.ackOther.Load(), TxAckCongestion: c.ackCongestion.Load(), TxAckWarnings: c.ackWarn.Load(),
		TxAckUnknown: c.ackUnknown.Load(), TxFailures: c.txFailures.Load(), FailuresDropped: c.failuresDropped.Load(),
	}
}

// NodeInfo is what the link knows about one node, for metrics.
type NodeInfo struct {
	Node      uint16  // node ID of the address header
	RSSI      int     // dBm, of the best copy of the last uplink
	SNR       float64 // dB, of the best copy of the last uplink
	FreqHz    uint32  // frequency of the last uplink
	DataRate  string  // e.g. "SF7BW125"
	CodeRate  string  // e.g. "4/5"
	Forwarder string  // EUI of the forwarder that heard the last uplink best
	LastSeen  time.Time
	Uplinks   uint64 // uplinks delivered (duplicates not counted)
	Queued    int    // downlinks waiting for a receive window
}

// BandUsage is one airtime ledger of a forwarder.
type BandUsage struct {
	SubBand string
	Used    time.Duration // airtime in the current window
	Limit   time.Duration // allowed per window; 0 = unlimited
	Sent    uint64        // frames charged
}

// ForwarderInfo is what the link knows about one packet forwarder.
type ForwarderInfo struct {
	EUI       string
	Version   uint8  // protocol version last used
	PushAddr  string // source of its last PUSH_DATA
	PullAddr  string // source of its last PULL_DATA: where downlinks go
	LastSeen  time.Time
	Uplinks   uint64 // rxpk entries it forwarded
	Downlinks uint64 // PULL_RESP datagrams sent to it
	Bands     []BandUsage
}
