package gateway

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/udp"
)

// frameBuf is a reusable copy of one received frame.
type frameBuf struct{ b []byte }

// frameEv is a frame routed to a shard.
type frameEv struct {
	link  *linkState
	key   peerKey
	c     *client // the client bound to key when the reader looked, or nil
	buf   *frameBuf
	n     int
	off   int  // offset of the MQTT-SN message (after an encapsulation)
	whole bool // the encapsulation used the whole-frame length
}

// deliverEv is a broker delivery for a client of the shard.
type deliverEv struct {
	sink *sink
	d    broker.Delivery
}

// outFrame is an encoded frame waiting for the end of the batch.
type outFrame struct {
	link       *linkState
	to         transport.Addr
	start, end int
	prio       transport.Priority
	// For the write's outcome (radiolink.go): the client the frame is
	// for, if any, and its outstanding request o or a QoS 0 delivery
	// kept in q0.
	c  *client
	o  *outflight
	q0 int32 // 1 + index in shard.q0; 0 for none
}

// batchMax is how many inbox events a shard handles before it writes
// its pending frames out.
const batchMax = 64

// shard is one worker goroutine and the clients it owns.
type shard struct {
	g   *Gateway
	idx int

	frames     chan frameEv
	deliveries chan deliverEv
	published  chan *pubWait // PublishAsync results (pubasync.go)
	free       chan *frameBuf
	nbuf       atomic.Int32
	kick       chan struct{}
	stopped    chan struct{}
	reload     chan *reloadReq // see reload.go

	mu          sync.Mutex // guards the two lists below
	starved     []*sink
	closedSinks []*sink

	// Owned by the shard goroutine.
	clients map[string]*client
	timers  timerHeap
	timer   *time.Timer
	timerAt int64
	pkt     sn.Packet
	shorts  map[uint16]string
	out     []byte
	outq    []outFrame
	dgrams  []udp.Datagram
	check   []*client         // awake clients to test for a finished flush
	txfail  chan txFailEv     // link delivery failures (radiolink.go)
	q0      []broker.Delivery // QoS 0 deliveries of this flush on metered links
	requeue []requeued        // of those, the ones a congested link refused
	dirty   []*client         // clients whose topic IDs must be saved (persist.go)
	npub    int               // QoS 1/2 publishes the broker has not answered (pubasync.go)
}

func newShard(g *Gateway, idx int) *shard {
	n := g.cfg.InboxSize
	sh := &shard{
		g:          g,
		idx:        idx,
		frames:     make(chan frameEv, n),
		deliveries: make(chan deliverEv, n),
		published:  make(chan *pubWait, n),
		free:       make(chan *frameBuf, n),
		kick:       make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		reload:     make(chan *reloadReq),
		clients:    make(map[string]*client),
		shorts:     make(map[uint16]string),
		timerAt:    -1,
		txfail:     make(chan txFailEv, 256),
	}
	sh.timer = time.NewTimer(time.Hour)
	sh.timer.Stop()
	return sh
}

// postFrame copies a frame into a shard buffer and queues it. Called by a
// link reader; it never blocks.
func (sh *shard) postFrame(ls *linkState, key *peerKey, c *client, frame []byte, off int, whole bool) {
	var fb *frameBuf
	select {
	case fb = <-sh.free:
	default:
		if sh.nbuf.Load() >= int32(cap(sh.frames)) {
			sh.g.stats.inboxFull.Add(1)
			return
		}
		sh.nbuf.Add(1)
		fb = &frameBuf{b: make([]byte, sh.g.cfg.MaxPacketSize)}
	}
	n := copy(fb.b, frame)
	select {
	case sh.frames <- frameEv{link: ls, key: *key, c: c, buf: fb, n: n, off: off, whole: whole}:
	default:
		sh.g.stats.inboxFull.Add(1)
		sh.recycle(fb)
	}
}

func (sh *shard) recycle(fb *frameBuf) {
	select {
	case sh.free <- fb:
	default:
		sh.nbuf.Add(-1)
	}
}

// starve records a sink whose delivery was refused for a full inbox, so
// the shard resumes it once it has caught up.
func (sh *shard) starve(s *sink) {
	if s.starved.Swap(true) {
		return
	}
	sh.mu.Lock()
	sh.starved = append(sh.starved, s)
	sh.mu.Unlock()
	sh.signal()
}

// postClosed records an attachment the broker ended.
func (sh *shard) postClosed(s *sink) {
	sh.mu.Lock()
	sh.closedSinks = append(sh.closedSinks, s)
	sh.mu.Unlock()
	sh.signal()
}

func (sh *shard) signal() {
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// run is the shard's goroutine.
func (sh *shard) run() {
	defer sh.g.wg.Done()
	for {
		select {
		case ev := <-sh.frames:
			sh.onFrameEv(&ev)
		case ev := <-sh.deliveries:
			sh.onDeliver(&ev)
		case w := <-sh.published:
			sh.onPublished(w)
		case <-sh.kick:
			sh.onWake()
		case <-sh.timer.C:
			sh.timerAt = -1
			sh.fireTimers()
		case ev := <-sh.txfail:
			sh.onTxFailure(&ev)
		case r := <-sh.reload:
			sh.onReload(r)
		case <-sh.g.done:
			sh.shutdown()
			return
		}
		sh.drain()
		sh.afterBatch()
	}
}

// drain handles what else is queued, up to a batch.
func (sh *shard) drain() {
	for i := 0; i < batchMax; i++ {
		select {
		case ev := <-sh.frames:
			sh.onFrameEv(&ev)
		case ev := <-sh.deliveries:
			sh.onDeliver(&ev)
		case w := <-sh.published:
			sh.onPublished(w)
		default:
			return
		}
	}
}

// afterBatch finishes awake clients' flushes, writes the batch's frames
// and re-arms the timer.
func (sh *shard) afterBatch() {
	for i, c := range sh.check {
		sh.check[i] = nil
		sh.maybeFlushed(c)
	}
	sh.check = sh.check[:0]
	sh.saveTopics() // before the REGACKs and SUBACKs that announce the IDs go out
	sh.flush()
	sh.armTimer()
}

// onWake resumes starved sinks and handles ended attachments.
func (sh *shard) onWake() {
	sh.mu.Lock()
	starved, closed := sh.starved, sh.closedSinks
	sh.starved, sh.closedSinks = nil, nil
	sh.mu.Unlock()
	for _, s := range closed {
		if c := s.c; c.sink == s && !c.removed {
			sh.g.stats.takeovers.Add(1)
			sh.send(c, &sn.Disconnect{})
			c.sess = nil // the broker already detached it
			sh.transition(c, EvTakeover, "session taken over")
		}
	}
	for _, s := range starved {
		s.starved.Store(false)
		if c := s.c; c.sink == s && !c.removed && c.sess != nil {
			s.needResume.Store(false)
			c.sess.Resume()
		}
	}
}

func (sh *shard) onFrameEv(ev *frameEv) {
	sh.onFrame(ev)
	sh.recycle(ev.buf)
}

// armTimer points the runtime timer at the earliest deadline.
func (sh *shard) armTimer() {
	t := sh.timers.peek()
	if t == nil {
		if sh.timerAt >= 0 {
			sh.timer.Stop()
			sh.timerAt = -1
		}
		return
	}
	if t.when == sh.timerAt {
		return
	}
	sh.timerAt = t.when
	d := time.Duration(t.when - sh.g.now())
	if d < 0 {
		d = 0
	}
	sh.timer.Reset(d)
}

// fireTimers runs every due deadline.
func (sh *shard) fireTimers() {
	now := sh.g.now()
	for {
		t := sh.timers.pop(now)
		if t == nil {
			return
		}
		if t.c.removed {
			continue
		}
		switch t.kind {
		case timerSupervise:
			sh.onSupervise(t.c, now)
		case timerRetry:
			sh.onRetry(t.c)
		}
	}
}

// send encodes m for client c; it goes out at the end of the batch.
func (sh *shard) send(c *client, m sn.Message) {
	if c.unbound.Load() {
		sh.g.stats.droppedDeliveries.Add(1)
		return
	}
	n := len(sh.outq)
	sh.sendTo(c.link, &c.key, c.whole, m)
	if len(sh.outq) > n {
		sh.outq[n].c = c // for the write's outcome (radiolink.go)
	}
}

// sendTo encodes m for a peer, encapsulated when the peer is behind a
// forwarder.
func (sh *shard) sendTo(ls *linkState, key *peerKey, whole bool, m sn.Message) {
	start := len(sh.out)
	var err error
	switch {
	case key.nlen == 0:
		sh.out, err = m.Append(sh.out)
	case whole:
		sh.out, err = m.Append(sh.out)
		if err == nil {
			inner := append([]byte(nil), sh.out[start:]...)
			sh.out = sh.out[:start]
			e := sn.Encapsulated{NodeID: key.nodeID(), Message: inner, WholeLength: true}
			sh.out, err = e.Append(sh.out)
		}
	default:
		sh.out, err = sn.AppendEncapsulated(sh.out, 0, key.nodeID(), m)
	}
	if err == nil && len(sh.out)-start > ls.mtu {
		err = transport.ErrTooLarge
	}
	if err != nil {
		sh.out = sh.out[:start]
		sh.g.stats.droppedDeliveries.Add(1)
		sh.g.log.Warn("frame not sent", "to", key.String(), "type", m.Type().String(), "err", err)
		return
	}
	if key.nlen > 0 {
		sh.g.stats.encapOut.Add(1)
	}
	sh.outq = append(sh.outq, outFrame{link: ls, to: key.addr, start: start, end: len(sh.out), prio: priority(m.Type())})
	if sh.g.debug {
		sh.g.log.Debug("frame out", "link", ls.name, "to", key.String(), "msg", m.String())
	}
}

func priority(t sn.MsgType) transport.Priority {
	switch t {
	case sn.TypePublish, sn.TypePubrel:
		return transport.PriorityDelivery
	case sn.TypeRegister:
		return transport.PriorityRegister
	case sn.TypeAdvertise, sn.TypeGWInfo:
		return transport.PriorityAdvertise
	}
	return transport.PriorityAck
}

// flush writes the batch's frames, with one sendmmsg per run of frames
// on a batching link.
func (sh *shard) flush() {
	q := sh.outq
	for i := 0; i < len(q); {
		ls := q[i].link
		if ls.batch != nil {
			j := i
			sh.dgrams = sh.dgrams[:0]
			for ; j < len(q) && q[j].link == ls; j++ {
				sh.dgrams = append(sh.dgrams, udp.Datagram{Data: sh.out[q[j].start:q[j].end], Addr: q[j].to})
			}
			n, err := ls.batch.WriteBatch(sh.dgrams)
			sh.g.stats.framesOut.Add(uint64(n))
			if err != nil {
				var to transport.Addr
				if i+n < j {
					to = q[i+n].to
				}
				sh.writeErr(ls, to, err)
				// Skip the frame that failed and send the rest one by one.
				for k := i + n + 1; k < j; k++ {
					sh.write(&q[k])
				}
			}
			i = j
			continue
		}
		sh.write(&q[i])
		i++
	}
	for i := range sh.dgrams {
		sh.dgrams[i] = udp.Datagram{}
	}
	clear(sh.outq)
	sh.outq = sh.outq[:0]
	sh.afterFlush()
	if cap(sh.out) > 1<<20 {
		sh.out = nil
	} else {
		sh.out = sh.out[:0]
	}
}

func (sh *shard) write(f *outFrame) {
	if sh.heldBack(f) { // radiolink.go
		return
	}
	var err error
	p := sh.out[f.start:f.end]
	if f.link.prio != nil {
		err = f.link.prio.WriteToPriority(p, f.to, f.prio)
	} else {
		err = f.link.l.WriteTo(p, f.to)
	}
	if err != nil {
		sh.writeErr(f.link, f.to, err)
		sh.refused(f, err)
		return
	}
	sh.wrote(f)
	sh.g.stats.framesOut.Add(1)
}

// writeErr counts and logs a failed write to the peer at to (the zero
// Addr when unknown). The log names the client bound to the peer, if any:
// a DTLS peer whose association ended (expired, closed by the peer,
// replaced by a new handshake) shows up here as "no such association"
// until the client connects or wakes on its new association.
func (sh *shard) writeErr(ls *linkState, to transport.Addr, err error) {
	if errors.Is(err, transport.ErrCongested) {
		sh.g.stats.linkCongested.Add(1)
		return
	}
	sh.g.stats.writeErrors.Add(1)
	select {
	case <-sh.g.done:
		return
	default:
	}
	if to.IsZero() {
		sh.g.log.Warn("link write failed", "link", ls.name, "err", err)
		return
	}
	client := ""
	if c := ls.lookup(&peerKey{addr: to}); c != nil {
		client = c.id // c.id is immutable: safe to read from any shard
	}
	sh.g.log.Warn("link write failed", "link", ls.name, "addr", to.String(), "client", client, "err", err)
}

// shortName returns the topic string of a short topic ID, cached so that
// PUBLISH on a short topic allocates no string.
func (sh *shard) shortName(id uint16) string {
	if s, ok := sh.shorts[id]; ok {
		return s
	}
	s := sn.ShortTopicName(id)
	sh.shorts[id] = s
	return s
}

// shutdown says goodbye to every client and detaches their sessions.
func (sh *shard) shutdown() {
	defer close(sh.stopped)
	for _, c := range sh.clients {
		if c.state.connected() {
			sh.send(c, &sn.Disconnect{})
		}
		if c.sink != nil {
			c.sink.closed.Store(true)
		}
		if c.sess != nil {
			c.sess.Disconnect(false)
			c.sess = nil
		}
		sh.forget(c)
	}
	sh.flush()
	sh.timer.Stop()
}
