package semtech

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// maxCands bounds the forwarders remembered per uplink.
const maxCands = 4

// candidate is one forwarder's copy of an uplink: the route back.
type candidate struct {
	eui  [8]byte
	tmst uint32 // the forwarder's own counter
	snr  float64
	rssi int
}

// downlink is a frame waiting for a receive window.
type downlink struct {
	frame   []byte // address header + MQTT-SN frame
	prio    radios.Priority
	gen     uint64    // the node's uplink generation when accepted
	at      time.Time // accepted
	charged bool      // airtime charged to fwd's ledger of band
	fwd     [8]byte
	band    string
}

// node is one sensor: its last uplink (signal, route, receive window)
// and its downlink queue.
type node struct {
	id   uint16
	addr transport.Addr

	// The last uplink.
	firstRx  time.Time
	hash     uint64
	freq     float64 // MHz, as the forwarder reported it
	freqHz   uint32
	datr     radios.DataRate
	codr     string
	params   radios.LoRaParams // downlink modulation in its window
	cands    [maxCands]candidate
	ncand    int // sorted by SNR, best first
	uplinks  uint64
	lastSeen time.Time

	// The receive window of the last uplink.
	gen      uint64
	open     bool // the dedup wait is over
	used     bool // a frame went out in it
	deadline time.Time
	stop     func() bool

	queue []downlink
}

// addCand inserts c by SNR; a forwarder's second copy replaces its first.
func (n *node) addCand(c candidate) {
	cs := n.cands[:n.ncand]
	if i := slices.IndexFunc(cs, func(o candidate) bool { return o.eui == c.eui }); i >= 0 {
		if c.snr <= cs[i].snr {
			return
		}
		cs = slices.Delete(cs, i, i+1)
	}
	i, _ := slices.BinarySearchFunc(cs, c.snr, func(o candidate, snr float64) int {
		switch {
		case o.snr > snr:
			return -1
		case o.snr < snr:
			return 1
		}
		return 0
	})
	if i >= maxCands {
		n.ncand = len(cs)
		return
	}
	if len(cs) == maxCands {
		cs = cs[:maxCands-1]
	}
	cs = slices.Insert(cs, i, c)
	n.ncand = copy(n.cands[:], cs)
}

// isCopy reports whether a frame with hash h heard by forwarder eui is
// another forwarder's copy of the node's last uplink. The same forwarder
// reporting the same bytes again heard a new transmission.
func (n *node) isCopy(h uint64, eui [8]byte, now time.Time, window time.Duration) bool {
	if n.hash != h || now.Before(n.firstRx) || now.Sub(n.firstRx) >= window {
		return false
	}
	return !slices.ContainsFunc(n.cands[:n.ncand], func(c candidate) bool { return c.eui == eui })
}

// bestForwarder returns the forwarder that heard n's last uplink best.
func (l *Link) bestForwarder(n *node) *forwarder {
	if n.ncand == 0 {
		return nil
	}
	return l.fwds[n.cands[0].eui]
}

func frameHash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// uplink processes one rxpk entry; l.mu is held.
func (l *Link) uplink(f *forwarder, r *radios.RXPK, now time.Time) {
	s := &l.stats
	s.rxPackets.Add(1)
	if r.Stat != 1 {
		s.rxCRCBad.Add(1)
		return
	}
	if r.Modu != "LORA" {
		s.rxNotLoRa.Add(1)
		return
	}
	payload, err := r.Payload()
	if err != nil {
		s.badData.Add(1)
		l.warn(&l.gates.data, "rxpk with a malformed payload, dropped", "eui", FormatEUI(f.eui), "err", err)
		return
	}
	id, msg, err := radios.DecodeUplink(payload, l.cfg.NetworkID)
	switch {
	case errors.Is(err, radios.ErrLoRaWAN):
		s.rxLoRaWAN.Add(1)
		return
	case errors.Is(err, radios.ErrOtherNetwork):
		s.rxOtherNetwork.Add(1)
		return
	case err != nil:
		s.rxBadHeader.Add(1)
		l.log.Debug("radio frame ignored", "link", l.cfg.Name, "eui", FormatEUI(f.eui), "cause", err)
		return
	case len(msg) == 0:
		s.rxBadHeader.Add(1)
		return
	}
	params, err := loraParams(r.DatR, r.CodR, l.cfg.Preamble, l.cfg.NoCRC)
	if err == nil && !(r.Freq > 0 && r.Freq < math.MaxUint32/1e6) {
		err = fmt.Errorf("%w: freq %v MHz", radios.ErrGWMPData, r.Freq)
	}
	if err != nil {
		s.badData.Add(1)
		l.warn(&l.gates.data, "rxpk with unusable radio parameters, dropped", "eui", FormatEUI(f.eui), "err", err)
		return
	}
	c := candidate{eui: f.eui, tmst: r.Tmst, snr: r.LSNR, rssi: r.RSSI}
	h := frameHash(payload)
	n := l.nodes[id]
	if n != nil && n.isCopy(h, f.eui, now, l.cfg.DedupWindow) {
		s.rxDuplicates.Add(1)
		n.addCand(c)
		return
	}
	if n == nil {
		n = l.newNode(id, now)
	}
	if n.stop != nil {
		n.stop()
		n.stop = nil
	}
	l.gen++
	n.gen = l.gen
	n.firstRx, n.lastSeen, n.hash = now, now, h
	n.freq, n.freqHz = r.Freq, uint32(math.Round(r.Freq*1e6))
	n.datr, n.codr, n.params = r.DatR, r.CodR, params
	n.ncand = 0
	n.addCand(c)
	n.uplinks++
	n.open, n.used = false, false
	n.deadline = now.Add(l.cfg.RXDelay - l.cfg.TxLead)
	l.noteSlow(n)
	l.expire(n, now)
	l.supersede(n)
	if len(l.fwds) > 1 {
		// Other forwarders may still report this uplink, maybe better.
		id, gen := n.id, n.gen
		n.stop = l.cfg.afterFunc(l.cfg.DedupWindow, func() { l.openWindow(id, gen) })
	} else {
		n.open = true
		l.trySend(n, now)
	}
	l.deliver(n.addr, msg)
}

// newNode adds a node, evicting one when the table is full; l.mu is held.
func (l *Link) newNode(id uint16, now time.Time) *node {
	if len(l.nodes) >= l.cfg.MaxNodes {
		var old, oldIdle *node
		for _, o := range l.nodes {
			if old == nil || o.lastSeen.Before(old.lastSeen) {
				old = o
			}
			if len(o.queue) == 0 && (oldIdle == nil || o.lastSeen.Before(oldIdle.lastSeen)) {
				oldIdle = o
			}
		}
		if oldIdle != nil {
			old = oldIdle
		}
		l.evict(old)
	}
	n := &node{id: id, addr: NodeAddr(id), lastSeen: now}
	l.nodes[id] = n
	return n
}

func (l *Link) evict(n *node) {
	if n.stop != nil {
		n.stop()
	}
	delete(l.nodes, n.id)
	l.stats.nodesEvicted.Add(1)
	l.warn(&l.gates.evict, "node table full, least recently heard node dropped", "node", n.addr, "queued", len(n.queue))
	for range n.queue {
		l.stats.txDropped.Add(1)
		l.fail(n.addr, fmt.Errorf("semtech %s: node %s: %w", l.cfg.Name, n.addr, ErrEvicted))
	}
	l.queued -= len(n.queue)
	n.queue = nil
}

// openWindow ends the dedup wait of an uplink and sends what is queued.
func (l *Link) openWindow(id uint16, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.isClosed() {
		return
	}
	n := l.nodes[id]
	if n == nil || n.gen != gen {
		return
	}
	n.stop = nil
	n.open = true
	l.trySend(n, l.cfg.Now())
}

// enqueue queues frame for node id (see WriteToPriority); l.mu is held.
func (l *Link) enqueue(id uint16, frame []byte, prio radios.Priority) error {
	now := l.cfg.Now()
	n := l.nodes[id]
	if n == nil {
		l.stats.txNoRoute.Add(1)
		return fmt.Errorf("semtech %s: node %s: %w", l.cfg.Name, NodeAddr(id), ErrUnknownNode)
	}
	l.expire(n, now)
	for i := range n.queue {
		if bytes.Equal(n.queue[i].frame, frame) {
			l.stats.txCoalesced.Add(1)
			return nil
		}
	}
	if len(n.queue) >= l.cfg.NodeQueue || l.queued >= l.cfg.MaxQueued {
		l.stats.txCongested.Add(1)
		return fmt.Errorf("semtech %s: node %s: %w: %w", l.cfg.Name, n.addr, transport.ErrCongested, radios.ErrQueueFull)
	}
	d := downlink{frame: frame, prio: prio, gen: n.gen, at: now}
	if f := l.bestForwarder(n); f != nil {
		b, err := f.budget(n.freqHz)
		if err != nil {
			return fmt.Errorf("semtech %s: node %s: %w", l.cfg.Name, n.addr, err)
		}
		if err := b.Reserve(n.params.Airtime(len(frame)), prio, now); err != nil {
			l.stats.txCongested.Add(1)
			return fmt.Errorf("semtech %s: node %s: %w: %w", l.cfg.Name, n.addr, transport.ErrCongested, err)
		}
		d.charged, d.fwd, d.band = true, f.eui, b.SubBand().Name
	}
	n.queue = append(n.queue, d)
	l.queued++
	l.stats.txQueued.Add(1)
	l.trySend(n, now)
	return nil
}

// expire drops n's downlinks older than FrameTTL; l.mu is held.
func (l *Link) expire(n *node, now time.Time) {
	kept := n.queue[:0]
	for _, d := range n.queue {
		if now.Sub(d.at) <= l.cfg.FrameTTL {
			kept = append(kept, d)
			continue
		}
		l.queued--
		l.stats.txExpired.Add(1)
		l.fail(n.addr, fmt.Errorf("semtech %s: node %s: %w", l.cfg.Name, n.addr, ErrExpired))
	}
	clear(n.queue[len(kept):])
	n.queue = kept
}

// supersede drops the acknowledgements queued before n's newest uplink;
// l.mu is held. They answered an earlier request of the node and missed
// its window: the node has moved on (a retry is answered again, and a
// late PINGRESP or DISCONNECT would end the node's next awake period
// before its buffered messages).
func (l *Link) supersede(n *node) {
	kept := n.queue[:0]
	for _, d := range n.queue {
		if d.prio == radios.PriorityAck && d.gen < n.gen {
			l.queued--
			l.stats.txSuperseded.Add(1)
			l.log.Debug("stale acknowledgement dropped at a new uplink", "link", l.cfg.Name, "node", n.addr)
			continue
		}
		kept = append(kept, d)
	}
	clear(n.queue[len(kept):])
	n.queue = kept
}

// trySend sends the head of n's queue in its receive window, if the
// window is open, unused and not too close; l.mu is held.
func (l *Link) trySend(n *node, now time.Time) {
	if !n.open || n.used || len(n.queue) == 0 || !now.Before(n.deadline) {
		return
	}
	d := &n.queue[0]
	airtime := n.params.Airtime(len(d.frame))
	delay := uint32(l.cfg.RXDelay / time.Microsecond)
	air := uint32(airtime/time.Microsecond) + 1
	horizon := l.cfg.RXDelay + 10*time.Second
	var f *forwarder
	var start uint32
	routes := 0
	for _, c := range n.cands[:n.ncand] {
		cf := l.fwds[c.eui]
		if cf == nil || !cf.hasPull {
			continue
		}
		routes++
		if s := c.tmst + delay; !cf.busy(s, s+air, now, horizon) {
			f, start = cf, s
			break
		}
	}
	if f == nil {
		if routes == 0 {
			l.stats.txNoRoute.Add(1)
			l.warn(&l.gates.packet, "no forwarder with a downlink path heard the node, frame kept for its next uplink", "node", n.addr)
		} else {
			l.stats.txDeferred.Add(1)
			l.log.Debug("transmitters busy in the node's window, frame kept", "link", l.cfg.Name, "node", n.addr)
		}
		return
	}
	b, err := f.budget(n.freqHz)
	if err == nil && (!d.charged || d.fwd != f.eui || d.band != b.SubBand().Name) {
		// Sent by another transmitter or on another sub-band than charged.
		if err = b.Reserve(airtime, d.prio, now); err == nil {
			d.charged, d.fwd, d.band = true, f.eui, b.SubBand().Name
		}
	}
	if err != nil {
		l.stats.txDeferred.Add(1)
		l.log.Info("no budget in the node's window, frame kept", "link", l.cfg.Name, "node", n.addr, "err", err)
		return
	}
	t := l.txpk(d.frame)
	t.Tmst = &start
	t.Freq = n.freq
	t.DatR = n.datr
	t.CodR = defaultStr(n.codr, "4/5")
	if err := l.sendTxpk(f, &t, n.addr, false); err != nil {
		l.log.Warn("downlink not sent", "link", l.cfg.Name, "node", n.addr, "err", err)
		return
	}
	f.schedule(start, start+air, now)
	n.used = true
	n.queue[0] = downlink{}
	n.queue = n.queue[1:]
	l.queued--
	l.stats.txSent.Add(1)
}

// sweep expires old downlinks of every node and recomputes the
// RetryInterval reference.
func (l *Link) sweep() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	l.slow = slowRef{}
	for _, n := range l.nodes {
		l.expire(n, now)
		if now.Sub(n.lastSeen) < 24*time.Hour {
			l.noteSlow(n)
		}
	}
}

// slowRef is the slowest uplink recently heard: retries are sized for it.
type slowRef struct {
	ok     bool
	params radios.LoRaParams
	freqHz uint32
	eui    [8]byte
}

func (l *Link) noteSlow(n *node) {
	if n.ncand == 0 {
		return
	}
	if l.slow.ok && n.params.Airtime(32) < l.slow.params.Airtime(32) {
		return
	}
	l.slow = slowRef{ok: true, params: n.params, freqHz: n.freqHz, eui: n.cands[0].eui}
}

// RetryInterval suggests the gateway's retransmission timer for a frame
// of n bytes: the receive-window delay plus the duty-cycle off-time of
// the frame at the slowest data rate recently heard (see
// radios.Budget.RetryInterval), so it grows with airtime. It does not
// include the time until the node's next uplink, which only the node
// decides.
func (l *Link) RetryInterval(n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	ref := l.slow
	if !ref.ok {
		ref.params = radios.LoRaParams{SF: 12, BandwidthHz: 125000, CodingRate: 1}
		if len(l.cfg.RegionRules.SubBands) > 0 {
			ref.freqHz = l.cfg.RegionRules.SubBands[0].MinHz
		}
	}
	airtime := ref.params.Airtime(n + radios.HeaderLen)
	if f := l.fwds[ref.eui]; f != nil {
		if b, err := f.budget(ref.freqHz); err == nil {
			return l.cfg.RXDelay + b.RetryInterval(airtime, now)
		}
	}
	sb, err := l.cfg.RegionRules.SubBandFor(ref.freqHz)
	if err != nil {
		sb = radios.SubBand{Name: "none"}
	}
	return l.cfg.RXDelay + radios.NewBudget(sb, l.cfg.Budget).RetryInterval(airtime, now)
}

// Node returns what the link knows about a node, for metrics.
func (l *Link) Node(a transport.Addr) (NodeInfo, bool) {
	id, ok := NodeID(a)
	if !ok {
		return NodeInfo{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.nodes[id]
	if n == nil {
		return NodeInfo{}, false
	}
	return n.info(), true
}

// Nodes returns what the link knows about every node, ordered by ID.
func (l *Link) Nodes() []NodeInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]NodeInfo, 0, len(l.nodes))
	for _, n := range l.nodes {
		out = append(out, n.info())
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return int(a.Node) - int(b.Node) })
	return out
}

func (n *node) info() NodeInfo {
	ni := NodeInfo{Node: n.id, FreqHz: n.freqHz, DataRate: n.datr.LoRa, CodeRate: n.codr, LastSeen: n.lastSeen,
		Uplinks: n.uplinks, Queued: len(n.queue)}
	if n.ncand > 0 {
		c := n.cands[0]
		ni.RSSI, ni.SNR, ni.Forwarder = c.rssi, c.snr, FormatEUI(c.eui)
	}
	return ni
}
