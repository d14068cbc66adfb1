package gateway

import "sync/atomic"

// Stats are the gateway's counters (monotonic since New) and gauges.
// Every rejection the gateway makes is counted here.
type Stats struct {
	// Gauges.
	Clients  int64 // tracked clients in any state
	Active   int64 // clients active or awake
	Sleeping int64 // clients asleep

	// Traffic.
	FramesIn      uint64 // frames read from links
	FramesOut     uint64 // frames written to links
	PublishIn     uint64 // PUBLISH from clients accepted by the broker
	PublishOut    uint64 // PUBLISH sent to clients (first transmissions)
	QoSMinus1In   uint64 // QoS -1 PUBLISH accepted
	Retransmits   uint64 // REGISTER, PUBLISH, PUBREL and will prompts resent
	WriteErrors   uint64 // link write failures
	LinkCongested uint64 // writes refused by a metered link

	// Radio links (radiolink.go).
	RejectCongestion   uint64 // CONNACK/REGACK/PUBACK/SUBACK "rejected: congestion" because the client's link was congested
	CongestionDeferred uint64 // gateway requests and deliveries held back or requeued because their link was congested
	TxFailures         uint64 // delivery failures reported by links (transport.DeliveryNotifier)
	TxFailureResends   uint64 // outstanding requests retransmitted early because of a TxFailure

	// Client lifecycle.
	Connects     uint64 // CONNACK accepted
	Disconnects  uint64 // clean DISCONNECT
	Lost         uint64 // clients lost (keep-alive, sleep expiry, retries); will published
	Sleeps       uint64 // DISCONNECT(duration)
	Wakes        uint64 // PINGREQ wake-ups
	Rebinds      uint64 // a client moved to a new address (CONNECT or PINGREQ(ClientId))
	Takeovers    uint64 // sessions taken over by another connection
	Registers    uint64 // REGISTER sent by the gateway
	Subscribes   uint64 // SUBSCRIBE accepted
	Unsubscribes uint64 // UNSUBSCRIBE handled

	// Rejections and drops.
	Malformed           uint64 // frames that failed to decode
	InboxFull           uint64 // frames dropped because a shard's inbox was full
	UnknownClient       uint64 // frames from addresses with no client (answered DISCONNECT or dropped)
	RejectMaxClients    uint64 // CONNACK congestion: MaxClients
	RejectRate          uint64 // CONNACK congestion: per-source new-client rate or pending limit
	RejectClientID      uint64 // CONNACK not supported: bad or too long ClientId
	RejectAllowList     uint64 // CONNACK not supported: not in the allow-list
	RejectIdentity      uint64 // CONNACK not supported / PINGREQ dropped: link identity mismatch
	RejectBroker        uint64 // CONNACK refused by the broker
	RejectTopicID       uint64 // PUBACK / SUBACK / UNSUBACK "invalid topic ID"
	RejectPublish       uint64 // PUBACK with another non-zero code (ACL, quota, congestion)
	RejectRegister      uint64 // REGACK rejections
	RejectSubscribe     uint64 // SUBACK rejections
	RejectQoSMinus1     uint64 // QoS -1 PUBLISH dropped (not allowed, bad topic, broker refusal)
	RejectForwarder     uint64 // encapsulated frames from forwarders not allowed
	DeliveryRejected    uint64 // deliveries the client rejected (PUBACK or REGACK with an error)
	UnexpectedFrames    uint64 // frames not valid in the client's state
	DroppedDeliveries   uint64 // deliveries the gateway could not send (no address, encode error)
	AdvertisesSent      uint64
	GWInfosSent         uint64
	SearchGWReceived    uint64
	PingsAnswered       uint64
	WillUpdates         uint64
	EncapsulatedIn      uint64
	EncapsulatedOut     uint64
	TopicIDsRecycled    uint64 // gateway topic IDs reused because MaxTopicIDs was reached
	BindingsOverwritten uint64 // an address moved from one client to another
}

// counters backs Stats with atomics.
type counters struct {
	clients, active, sleeping atomic.Int64

	framesIn, framesOut, publishIn, publishOut, qosMinus1In, retransmits, writeErrors, linkCongested atomic.Uint64

	rejectCongestion, congestionDeferred, txFailures, txFailureResends atomic.Uint64

	connects, disconnects, lost, sleeps, wakes, rebinds, takeovers, registers, subscribes, unsubscribes atomic.Uint64

	malformed, inboxFull, unknownClient, rejectMaxClients, rejectRate, rejectClientID, rejectAllowList,
	rejectIdentity, rejectBroker, rejectTopicID, rejectPublish, rejectRegister, rejectSubscribe,
	rejectQoSMinus1, rejectForwarder, deliveryRejected, unexpected, droppedDeliveries, advertises,
	gwinfos, searchgw, pings, willUpdates, encapIn, encapOut, recycled, overwritten atomic.Uint64
}

// Stats returns a snapshot of the gateway's counters.
func (g *Gateway) Stats() Stats {
	c := &g.stats
	return Stats{
		Clients:             c.clients.Load(),
		Active:              c.active.Load(),
		Sleeping:            c.sleeping.Load(),
		FramesIn:            c.framesIn.Load(),
		FramesOut:           c.framesOut.Load(),
		PublishIn:           c.publishIn.Load(),
		PublishOut:          c.publishOut.Load(),
		QoSMinus1In:         c.qosMinus1In.Load(),
		Retransmits:         c.retransmits.Load(),
		WriteErrors:         c.writeErrors.Load(),
		LinkCongested:       c.linkCongested.Load(),
		RejectCongestion:    c.rejectCongestion.Load(),
		CongestionDeferred:  c.congestionDeferred.Load(),
		TxFailures:          c.txFailures.Load(),
		TxFailureResends:    c.txFailureResends.Load(),
		Connects:            c.connects.Load(),
		Disconnects:         c.disconnects.Load(),
		Lost:                c.lost.Load(),
		Sleeps:              c.sleeps.Load(),
		Wakes:               c.wakes.Load(),
		Rebinds:             c.rebinds.Load(),
		Takeovers:           c.takeovers.Load(),
		Registers:           c.registers.Load(),
		Subscribes:          c.subscribes.Load(),
		Unsubscribes:        c.unsubscribes.Load(),
		Malformed:           c.malformed.Load(),
		InboxFull:           c.inboxFull.Load(),
		UnknownClient:       c.unknownClient.Load(),
		RejectMaxClients:    c.rejectMaxClients.Load(),
		RejectRate:          c.rejectRate.Load(),
		RejectClientID:      c.rejectClientID.Load(),
		RejectAllowList:     c.rejectAllowList.Load(),
		RejectIdentity:      c.rejectIdentity.Load(),
		RejectBroker:        c.rejectBroker.Load(),
		RejectTopicID:       c.rejectTopicID.Load(),
		RejectPublish:       c.rejectPublish.Load(),
		RejectRegister:      c.rejectRegister.Load(),
		RejectSubscribe:     c.rejectSubscribe.Load(),
		RejectQoSMinus1:     c.rejectQoSMinus1.Load(),
		RejectForwarder:     c.rejectForwarder.Load(),
		DeliveryRejected:    c.deliveryRejected.Load(),
		UnexpectedFrames:    c.unexpected.Load(),
		DroppedDeliveries:   c.droppedDeliveries.Load(),
		AdvertisesSent:      c.advertises.Load(),
		GWInfosSent:         c.gwinfos.Load(),
		SearchGWReceived:    c.searchgw.Load(),
		PingsAnswered:       c.pings.Load(),
		WillUpdates:         c.willUpdates.Load(),
		EncapsulatedIn:      c.encapIn.Load(),
		EncapsulatedOut:     c.encapOut.Load(),
		TopicIDsRecycled:    c.recycled.Load(),
		BindingsOverwritten: c.overwritten.Load(),
	}
}
