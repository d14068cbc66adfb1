package gateway

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/transport"
)

// Link feedback: what the gateway learns from a link besides frames, and
// how it adapts to slow, metered radios (DESIGN.md: "a radio is slow and
// metered").
//
//   - transport.PriorityWriter: every downlink carries its priority
//     (priority(): acknowledgements first, then deliveries, then the
//     gateway's REGISTER, ADVERTISE/GWINFO last).
//   - transport.RetryAdvisor: the retransmission timer of a client's
//     outstanding request (and the congestion hold below) is
//     max(RetryInterval, advisor.RetryInterval(frame length)), so retry
//     timers grow with the link's airtime and duty cycle.
//   - transport.ErrCongested on a write at acknowledgement, delivery or
//     REGISTER priority marks a congestion at that priority for one retry
//     interval (cleared early when a write at that priority or a lower
//     one succeeds). It is link-wide on links with one transmitter and
//     budget (sharedAirtime: serial, simradio) and per client elsewhere
//     (the Semtech forwarder's budgets and queues are per forwarder and
//     node). While a client's path is congested for deliveries, its
//     CONNECT, REGISTER, PUBLISH (QoS 1/2) and SUBSCRIBE are answered
//     "rejected: congestion" (Stats.RejectCongestion), so sensors back
//     off for T_WAIT; the gateway's own deliveries and REGISTERs to it
//     are held, not attempted (Stats.CongestionDeferred), and resumed by
//     the client's retry timer.
//     A refused PUBLISH that never went on air (QoS 0, or the first
//     transmission of a QoS 1/2 one) goes back to the head of the client's
//     queue, in its original order; another refused request (a
//     retransmission, PUBREL, REGISTER) is resent when the timer fires
//     without using up a retry. Congestion alone never makes a client
//     lost and never loses a message.
//   - transport.DeliveryNotifier: one goroutine per link reads TxFailures
//     and posts each to the shard of the client bound to the address
//     (non-blocking; the shard never waits for it). The shard retransmits
//     the client's outstanding request at once, counted as a retry, at
//     most once per retry period: a second failure before the timer fires
//     is left to the timer, which bounds bursts on a link whose radio
//     fails fast. A failure that wraps ErrCongested (no free channel
//     after listen-before-talk, a modem that is unplugged) is left to the
//     timer too: resending at once would fail the same way. Failures for
//     addresses with no client, or clients with nothing outstanding (a
//     lost acknowledgement: the client retransmits its own request), are
//     only counted. The failure cannot say which frame was lost, so a lost
//     acknowledgement may cause a duplicate of the outstanding request;
//     the protocol's DUP handling absorbs it.

// sharedAirtime is implemented by links (transport/serial,
// radios/simradio) whose ErrCongested concerns every peer at once: one
// transmitter with one airtime budget and one transmit queue. On other
// links (the Semtech packet forwarder: budgets per forwarder and
// sub-band, queues per node) it concerns the one peer it was returned
// for, so the congestion is kept per client.
type sharedAirtime interface {
	SharedAirtime() bool
}

// linkFeedback is the optional feedback interfaces of one link and its
// congestion state.
type linkFeedback struct {
	notifier transport.DeliveryNotifier
	advisor  transport.RetryAdvisor
	shared   bool // congestion is link-wide (sharedAirtime)
	// congestion is 0, or until<<2 | level: the link refused a frame of
	// priority level; frames of that priority or lower wait until the
	// gateway clock reaches until. Shared-airtime links only.
	congestion atomic.Uint64
}

func newLinkFeedback(l transport.Link) *linkFeedback {
	fb := &linkFeedback{}
	fb.notifier, _ = l.(transport.DeliveryNotifier)
	fb.advisor, _ = l.(transport.RetryAdvisor)
	if sa, ok := l.(sharedAirtime); ok {
		fb.shared = sa.SharedAirtime()
	}
	return fb
}

// txFailEv is a link's delivery failure posted to a client's shard.
type txFailEv struct {
	link *linkState
	c    *client
	to   transport.Addr
}

// requeued is a delivery whose first PUBLISH a congested link refused.
type requeued struct {
	c    *client
	sink *sink
	d    broker.Delivery
}

// maxRetryAfter bounds a link's retry advice.
const maxRetryAfter = 24 * time.Hour

// retryAfter is the retransmission interval of an n-byte request on ls:
// T_RETRY, or the link's advice when that is longer.
func (g *Gateway) retryAfter(ls *linkState, n int) time.Duration {
	t := g.cfg.RetryInterval
	if ls.fb.advisor != nil {
		if r := ls.fb.advisor.RetryInterval(n); r > t {
			t = min(r, maxRetryAfter)
		}
	}
	return t
}

// congestionEnd decodes a congestion word: the end of the congestion for
// frames of priority p, or 0.
func congestionEnd(st uint64, p transport.Priority, now int64) int64 {
	if st == 0 || transport.Priority(st&3) > p {
		return 0
	}
	if until := int64(st >> 2); until > now {
		return until
	}
	return 0
}

// mergeCongestion adds a refusal at priority p until until to word old.
func mergeCongestion(old uint64, p transport.Priority, until, now int64) uint64 {
	if old != 0 && int64(old>>2) > now {
		p = min(p, transport.Priority(old&3))
		until = max(until, int64(old>>2))
	}
	return uint64(until)<<2 | uint64(p)
}

// congestedUntil returns the end of the congestion that holds frames of
// priority p for client c (nil for a peer with no client yet) on ls, or
// 0 when such frames may be sent now. Called on c's shard.
func (g *Gateway) congestedUntil(ls *linkState, c *client, p transport.Priority) int64 {
	now := g.now()
	until := congestionEnd(ls.fb.congestion.Load(), p, now)
	if c != nil && c.congestion != 0 {
		until = max(until, congestionEnd(c.congestion, p, now))
	}
	return until
}

// markCongested records that ls refused an n-byte frame of priority p
// for client c (nil if none): link-wide on a shared-airtime link, else
// for c alone. ADVERTISE and GWINFO refusals are only counted: they hold
// nothing back. It runs on c's shard (or, for a link-wide mark without a
// client, anywhere).
func (g *Gateway) markCongested(ls *linkState, c *client, p transport.Priority, n int) {
	if p > transport.PriorityRegister {
		return
	}
	now := g.now()
	until := now + int64(g.retryAfter(ls, n))
	if !ls.fb.shared {
		if c != nil {
			c.congestion = mergeCongestion(c.congestion, p, until, now)
		}
		return
	}
	for {
		old := ls.fb.congestion.Load()
		if ls.fb.congestion.CompareAndSwap(old, mergeCongestion(old, p, until, now)) {
			return
		}
	}
}

// clearCongested ends a congestion after a frame of priority p for c went
// out: the budget has room again for p and everything more urgent.
func (g *Gateway) clearCongested(ls *linkState, c *client, p transport.Priority) {
	if old := ls.fb.congestion.Load(); old != 0 && p >= transport.Priority(old&3) {
		ls.fb.congestion.CompareAndSwap(old, 0)
	}
	if c != nil && c.congestion != 0 && p >= transport.Priority(c.congestion&3) {
		c.congestion = 0
	}
}

// rejectCongested reports, and counts, that a request from client c
// (nil for a CONNECT from a new client) on ls is to be answered
// "rejected: congestion": the link, or c's own path on it, cannot carry
// deliveries now.
func (sh *shard) rejectCongested(ls *linkState, c *client) bool {
	if sh.g.congestedUntil(ls, c, transport.PriorityDelivery) == 0 {
		return false
	}
	sh.g.stats.rejectCongestion.Add(1)
	if sh.g.debug {
		sh.g.log.Debug("request answered with congestion", "link", ls.name)
	}
	return true
}

// connectCongested reports whether a CONNECT on ls from the peer at key
// is to be answered "rejected: congestion"; c is the client with that
// ID, if any (its own congestion counts only on the same binding).
func (g *Gateway) connectCongested(ls *linkState, c *client, key *peerKey) bool {
	if c != nil && (c.link != ls || c.key != *key) {
		c = nil
	}
	return g.congestedUntil(ls, c, transport.PriorityDelivery) != 0
}

// holdForCongestion reports whether c's link is congested for frames of
// priority p. If so, the deliveries stay held and c's retry timer is set
// to the end of the congestion (when no request is outstanding, the timer
// resumes the deliveries).
func (sh *shard) holdForCongestion(c *client, p transport.Priority) bool {
	until := sh.g.congestedUntil(c.link, c, p)
	if until == 0 {
		return false
	}
	sh.g.stats.congestionDeferred.Add(1)
	if c.out == nil || !c.retry.armed() || c.retry.when < until {
		sh.timers.set(&c.retry, until)
	}
	return true
}

// outPriority is the downlink priority of an outstanding request.
func outPriority(k outKind) transport.Priority {
	switch k {
	case outRegister:
		return transport.PriorityRegister
	case outPublish, outPubrel:
		return transport.PriorityDelivery
	}
	return transport.PriorityAck
}

// tagRequest marks the frame sendOut just queued (from offset start) as
// c's outstanding request o, so the write's outcome reaches o.
func (sh *shard) tagRequest(c *client, o *outflight, start int) {
	if n := len(sh.outq); n > 0 && sh.outq[n-1].start == start && sh.outq[n-1].link.batch == nil {
		sh.outq[n-1].c, sh.outq[n-1].o = c, o
	}
}

// tagQoS0 keeps a copy of delivery d with the QoS 0 PUBLISH just queued
// from offset start on a metered link, so a refusal can requeue it.
func (sh *shard) tagQoS0(c *client, d *broker.Delivery, start int) {
	n := len(sh.outq)
	if n == 0 || sh.outq[n-1].start != start || c.link.prio == nil {
		return
	}
	sh.q0 = append(sh.q0, *d)
	sh.outq[n-1].c, sh.outq[n-1].q0 = c, int32(len(sh.q0))
}

// heldBack reports whether a delivery or request frame is not to be
// written because its path became congested earlier in this flush; it is
// then handled as refused, which keeps the client's deliveries in order.
func (sh *shard) heldBack(f *outFrame) bool {
	if f.o == nil && f.q0 == 0 {
		return false
	}
	if sh.g.congestedUntil(f.link, f.c, f.prio) == 0 {
		return false
	}
	sh.refused(f, transport.ErrCongested)
	return true
}

// wrote records a frame the link accepted.
func (sh *shard) wrote(f *outFrame) {
	sh.g.clearCongested(f.link, f.c, f.prio)
	if o := f.o; o != nil {
		o.sent, o.refused = true, false
	}
}

// refused handles a frame the link did not accept. Only congestion is
// special: the link is marked; a PUBLISH that never went on air (QoS 0,
// or the first transmission of a QoS 1/2 one) is kept for requeueing at
// the end of the flush; another outstanding request is marked refused.
func (sh *shard) refused(f *outFrame, err error) {
	if !errors.Is(err, transport.ErrCongested) {
		return
	}
	c := f.c
	sh.g.markCongested(f.link, c, f.prio, f.end-f.start)
	switch o := f.o; {
	case o != nil && c.out == o && !o.sent && o.kind == outPublish:
		// Never on air: back to the queue, in order with the QoS 0 ones.
		sh.requeue = append(sh.requeue, requeued{c: c, sink: c.sink, d: o.d})
		c.out = nil
		sh.timers.stop(&c.retry)
	case o != nil && c.out == o:
		o.refused = true // resent by the retry timer without using a retry
		sh.g.stats.congestionDeferred.Add(1)
	case f.q0 > 0:
		sh.requeue = append(sh.requeue, requeued{c: c, sink: c.sink, d: sh.q0[f.q0-1]})
	}
}

// afterFlush puts the deliveries refused in this flush back at the head
// of their clients' queues, in their original order, and forgets the
// flush's delivery copies.
func (sh *shard) afterFlush() {
	for i := len(sh.requeue) - 1; i >= 0; i-- {
		r := &sh.requeue[i]
		c := r.c
		if c.removed || c.sink != r.sink || r.sink == nil {
			sh.g.stats.droppedDeliveries.Add(1)
		} else {
			c.hold = append([]broker.Delivery{r.d}, c.hold...)
			c.sink.credits.Add(1)
			sh.g.stats.congestionDeferred.Add(1)
			if c.out == nil {
				until := sh.g.congestedUntil(c.link, c, transport.PriorityDelivery)
				if until == 0 {
					until = sh.g.now() + int64(sh.g.cfg.RetryInterval)
				}
				sh.timers.set(&c.retry, until)
			}
		}
		*r = requeued{}
	}
	sh.requeue = sh.requeue[:0]
	clear(sh.q0)
	sh.q0 = sh.q0[:0]
}

// startLinkFeedback starts one failure reader per link that reports
// delivery failures.
func (g *Gateway) startLinkFeedback() {
	for _, ls := range g.links {
		if ls.fb.notifier != nil {
			g.wg.Add(1)
			go g.failureLoop(ls)
		}
	}
}

// failureLoop reads a link's delivery failures and posts each to the
// shard of the client bound to the failed address. It never blocks a
// shard: a full shard queue drops the failure (the retry timer acts).
func (g *Gateway) failureLoop(ls *linkState) {
	defer g.wg.Done()
	ch := ls.fb.notifier.TxFailures()
	for {
		var f transport.TxFailure
		var ok bool
		select {
		case <-g.done:
			return
		case f, ok = <-ch:
			if !ok {
				return
			}
		}
		g.stats.txFailures.Add(1)
		if g.debug {
			g.log.Debug("link delivery failure", "link", ls.name, "to", f.To.String(), "err", f.Err)
		}
		if errors.Is(f.Err, transport.ErrCongested) {
			continue // no free channel, no device: resending now would fail too
		}
		c := ls.lookup(&peerKey{addr: f.To})
		if c == nil {
			continue // no client there (a broadcast, a forwarder's node, gone)
		}
		select {
		case c.shard.txfail <- txFailEv{link: ls, c: c, to: f.To}:
		default:
			g.stats.inboxFull.Add(1)
		}
	}
}

// onTxFailure retransmits c's outstanding request after its link
// reported a failed delivery to c (see the comment at the top).
func (sh *shard) onTxFailure(ev *txFailEv) {
	c := ev.c
	if c.removed || c.link != ev.link || c.key.addr != ev.to || c.key.nlen != 0 || c.unbound.Load() {
		return
	}
	o := c.out
	if o == nil || o.early || o.refused || o.retries >= sh.g.cfg.MaxRetries {
		return
	}
	if c.state != StateActive && c.state != StateAwake && c.state != StateConnecting {
		return
	}
	if sh.g.congestedUntil(c.link, c, outPriority(o.kind)) != 0 {
		return
	}
	o.retries++
	o.early = true
	sh.g.stats.retransmits.Add(1)
	sh.g.stats.txFailureResends.Add(1)
	sh.sendOut(c, true)
}

// retryCongested handles the retry timer of a request the link refused
// or would refuse now; it reports whether it did. A refused request is
// resent without using up a retry; while the link is congested the timer
// is moved to the end of the congestion.
func (sh *shard) retryCongested(c *client) bool {
	o := c.out
	if until := sh.g.congestedUntil(c.link, c, outPriority(o.kind)); until != 0 {
		sh.g.stats.congestionDeferred.Add(1)
		sh.timers.set(&c.retry, until)
		return true
	}
	if !o.refused {
		return false
	}
	o.early = false
	sh.sendOut(c, o.sent)
	return true
}
