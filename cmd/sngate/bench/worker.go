package bench

import (
	"github.com/sngate/sngate/sn"
)

// Client states.
const (
	csWait        uint8 = iota // waiting for a socket to begin its setup
	csConnecting               // CONNECT sent
	csRegistering              // REGISTER sent
	csSubscribing              // SUBSCRIBE sent
	csToSleep                  // DISCONNECT(duration) sent
	csReady                    // set up and active
	csAsleep                   // asleep; needs no socket
	csWaking                   // PINGREQ(ClientId) sent, draining until PINGRESP
	csDrained                  // drained, asleep again
	csRebind                   // teardown: PINGREQ(ClientId) sent from a new socket
	csClosing                  // teardown: DISCONNECT sent
	csDone                     // disconnected by the teardown
	csFailed                   // gave up; counted in the errors
)

// handshake reports whether a state waits for an answer to a request
// (and holds a window slot).
func handshake(st uint8) bool {
	switch st {
	case csConnecting, csRegistering, csSubscribing, csToSleep, csWaking, csRebind, csClosing:
		return true
	}
	return false
}

// client is one simulated MQTT-SN client, owned by one worker.
type client struct {
	idx      uint32
	s        *sock
	state    uint8
	tries    uint8
	inflight uint8 // 1: PUBLISH awaiting PUBACK/PUBREC; 2: PUBREL awaiting PUBCOMP
	own      bool  // s is the socket the gateway has bound to this client
	topicID  uint16
	msgID    uint16
	sent     uint32 // PUBLISH first transmissions (the next sequence number)
	lastTx   int64  // last request sent, for the retry timer
	reqAt    int64  // first transmission of the current request
	nextAt   int64  // earliest next PUBLISH (closed loop with a rate)
	seen     seqSet // sequence numbers received (subscribe, sleep)
}

func (c *client) nextMsgID() uint16 {
	c.msgID++
	if c.msgID == 0 {
		c.msgID = 1
	}
	return c.msgID
}

// sock is one UDP socket of a worker.
type sock struct {
	fd  int
	tag int32
	c   *client // current owner, or nil
}

// outFrame is an encoded frame waiting for the end of the iteration.
type outFrame struct {
	s          *sock
	start, end int
	offer      bool // an open-loop PUBLISH: offered once sent
}

// worker drives a share of the clients and of the sockets.
type worker struct {
	r       *run
	clients []*client
	socks   []*sock
	free    []*sock
	queue   []*client // clients waiting for a socket or a window slot
	qhead   int
	busy    int // clients in a handshake
	window  int
	active  []*client // clients sending in the publish scenario
	poll    *poller
	io      *batchIO
	tags    []int32
	pkt     sn.Packet
	wbuf    []byte
	outq    []outFrame
	frames  [][]byte
	topic   []byte
	data    []byte
	payload []byte

	phase    int32
	credit   float64
	lastTick int64
	lastScan int64

	lat, ack, wake, conn *hist
	errs                 map[string]uint64

	offered, received, dups uint64 // not yet added to the run's totals
}

func newWorker(r *run, batch int) (*worker, error) {
	p, err := newPoller(256)
	if err != nil {
		return nil, err
	}
	w := &worker{
		r: r, poll: p, io: newBatchIO(batch), phase: -1,
		lat: newHist(), ack: newHist(), wake: newHist(), conn: newHist(), errs: make(map[string]uint64),
		payload: make([]byte, r.cfg.Size),
	}
	for i := range w.payload {
		w.payload[i] = 'x'
	}
	return w, nil
}

// addSock registers a socket with the worker's poller.
func (w *worker) addSock(fd int) error {
	s := &sock{fd: fd, tag: int32(len(w.socks))}
	if err := w.poll.add(fd, s.tag); err != nil {
		return err
	}
	w.socks = append(w.socks, s)
	w.free = append(w.free, s)
	return nil
}

func (w *worker) fail(kind string) { w.errs[kind]++ }

// loop runs the worker until the run stops.
func (w *worker) loop() {
	r := w.r
	defer w.close()
	for {
		ph := r.phase.Load()
		if ph != w.phase {
			w.enter(ph)
		}
		if ph == phaseStop {
			return
		}
		w.dequeue(r.now())
		var err error
		w.tags, err = w.poll.wait(w.timeout(ph), w.tags[:0])
		if err != nil {
			w.fail("poll error")
		}
		now := r.now()
		for _, t := range w.tags {
			w.readSock(w.socks[t], now)
		}
		if ph == phaseRun && r.cfg.Scenario == ScenarioPublish {
			w.tickPublish(now)
		}
		if now-w.lastScan > 20e6 {
			w.lastScan = now
			w.scanRetries(now)
		}
		w.flush()
		w.publishCounts()
	}
}

// timeout picks the poll timeout in milliseconds for the phase.
func (w *worker) timeout(ph int32) int {
	if len(w.outq) > 0 || (w.qhead < len(w.queue) && w.busy < w.window && len(w.free) > 0) {
		return 0
	}
	if ph == phaseRun && w.r.cfg.Scenario == ScenarioPublish && len(w.active) > 0 {
		if w.r.cfg.Rate == 0 && !w.r.closedLoop {
			return 0
		}
		return 1
	}
	return 10
}

// publishCounts adds the iteration's counts to the run's totals.
func (w *worker) publishCounts() {
	if w.offered > 0 {
		w.r.offered.Add(w.offered)
		w.offered = 0
	}
	if w.received > 0 {
		w.r.received.Add(w.received)
		w.received = 0
	}
	if w.dups > 0 {
		w.r.dups.Add(w.dups)
		w.dups = 0
	}
}

// enter starts a new phase.
func (w *worker) enter(ph int32) {
	w.phase = ph
	now := w.r.now()
	defer w.r.entered[ph].Add(1)
	switch ph {
	case phaseSetup:
		w.queue = append(w.queue[:0], w.clients...)
		w.qhead = 0
	case phaseRun:
		w.lastTick = now
		w.active = w.active[:0]
		for _, c := range w.clients {
			if c.state == csReady {
				w.active = append(w.active, c)
			}
		}
	case phaseWake:
		w.queue, w.qhead = w.queue[:0], 0
		for _, c := range w.clients {
			if c.state == csAsleep {
				w.queue = append(w.queue, c)
			}
		}
	case phaseTeardown:
		w.queue, w.qhead = w.queue[:0], 0
		w.active = w.active[:0]
		for _, c := range w.clients {
			switch c.state {
			case csReady, csAsleep, csDrained, csWaking:
				if c.state == csReady && w.r.cfg.QoS == -1 {
					continue
				}
				if handshake(c.state) {
					w.endHandshake()
				}
				if c.inflight > 0 {
					c.inflight = 0
					w.r.inflight.Add(-1)
				}
				c.state = csAsleep // "has a session": the teardown disconnects it
				w.queue = append(w.queue, c)
				w.r.toClose.Add(1)
			}
		}
		w.r.tornDown.Add(1)
	}
}

// dequeue starts the next step of waiting clients while sockets and
// window slots allow.
func (w *worker) dequeue(now int64) {
	for w.qhead < len(w.queue) && w.busy < w.window {
		c := w.queue[w.qhead]
		if c.s == nil {
			if len(w.free) == 0 {
				return
			}
			s := w.free[len(w.free)-1]
			w.free = w.free[:len(w.free)-1]
			s.c, c.s, c.own = c, s, false
		}
		w.queue[w.qhead] = nil
		w.qhead++
		w.begin(c, now)
	}
	if w.qhead == len(w.queue) {
		w.queue, w.qhead = w.queue[:0], 0
	}
}

// release gives c's socket back to the pool when sockets are shared.
func (w *worker) release(c *client) {
	if !w.r.pooled || c.s == nil {
		return
	}
	c.s.c = nil
	w.free = append(w.free, c.s)
	c.s = nil
}

// endHandshake frees c's window slot.
func (w *worker) endHandshake() {
	if w.busy > 0 {
		w.busy--
	}
}

// readSock handles every datagram queued on s.
func (w *worker) readSock(s *sock, now int64) {
	for rounds := 0; rounds < 8; rounds++ {
		n, err := w.io.recv(s.fd)
		if err != nil {
			w.fail("receive error: " + err.Error())
			return
		}
		for i := 0; i < n; i++ {
			b, trunc := w.io.msg(i)
			if trunc {
				w.fail("truncated frame")
				continue
			}
			if s.c == nil {
				w.fail("frame for no client")
				continue
			}
			w.onFrame(s.c, b, now)
		}
		if n < w.io.size() {
			return
		}
	}
}

// scanRetries resends requests that went unanswered for T_RETRY, and
// gives up after N_RETRY resends.
func (w *worker) scanRetries(now int64) {
	retry := int64(w.r.cfg.Retry)
	for _, s := range w.socks {
		c := s.c
		if c == nil || now-c.lastTx < retry {
			continue
		}
		if !handshake(c.state) && c.inflight == 0 {
			continue
		}
		if int(c.tries) >= w.r.cfg.Retries {
			w.giveUp(c, "timeout: "+stateName(c.state, c.inflight))
			continue
		}
		c.tries++
		w.fail("retransmission")
		w.resend(c, now)
	}
}

// giveUp abandons c's current request.
func (w *worker) giveUp(c *client, kind string) {
	w.fail(kind)
	if c.inflight > 0 {
		c.inflight = 0
		c.tries = 0
		w.r.inflight.Add(-1)
		return
	}
	w.finishClient(c, csFailed)
}

// finishClient ends c's handshake with a final state for the phase.
func (w *worker) finishClient(c *client, st uint8) {
	if handshake(c.state) {
		w.endHandshake()
	}
	prev := c.state
	c.state = st
	c.tries = 0
	switch {
	case prev == csRebind || prev == csClosing:
		w.r.closed.Add(1)
	case prev == csWaking:
		w.r.finished.Add(1)
	case w.phase == phaseSetup:
		if st != csFailed {
			w.r.setupOK.Add(1)
		}
		w.r.setupDone.Add(1)
	}
	if st == csFailed || st == csDone || st == csAsleep || st == csDrained ||
		(st == csReady && w.r.cfg.Scenario == ScenarioConnect) {
		w.release(c)
	}
}

// queueFrame appends an encoded frame for s.
func (w *worker) queueFrame(s *sock, m sn.Message, offer bool) {
	start := len(w.wbuf)
	var err error
	w.wbuf, err = m.Append(w.wbuf)
	if err != nil {
		w.wbuf = w.wbuf[:start]
		w.fail("encode error")
		return
	}
	w.outq = append(w.outq, outFrame{s: s, start: start, end: len(w.wbuf), offer: offer})
}

// flush sends the queued frames, one sendmmsg per run of frames to the
// same socket.
func (w *worker) flush() {
	q := w.outq
	for i := 0; i < len(q); {
		j := i
		w.frames = w.frames[:0]
		for ; j < len(q) && q[j].s == q[i].s; j++ {
			w.frames = append(w.frames, w.wbuf[q[j].start:q[j].end])
		}
		n, err := w.io.send(q[i].s.fd, w.frames)
		for k := i; k < i+n; k++ {
			if q[k].offer {
				w.offered++
			}
		}
		if err != nil {
			if err == errAgain {
				w.fail("send buffer full (frames not sent)")
			} else {
				w.fail("send error")
			}
		}
		i = j
	}
	for i := range w.frames {
		w.frames[i] = nil
	}
	w.outq = w.outq[:0]
	w.wbuf = w.wbuf[:0]
}

// close releases the worker's sockets and poller.
func (w *worker) close() {
	w.flush()
	for _, s := range w.socks {
		closeSock(s.fd)
	}
	w.poll.close()
}

// stateName names a client state for error kinds.
func stateName(st, inflight uint8) string {
	switch {
	case inflight == 1:
		return "PUBLISH"
	case inflight == 2:
		return "PUBREL"
	}
	switch st {
	case csConnecting:
		return "CONNECT"
	case csRegistering:
		return "REGISTER"
	case csSubscribing:
		return "SUBSCRIBE"
	case csToSleep:
		return "DISCONNECT(duration)"
	case csWaking, csRebind:
		return "PINGREQ(ClientId)"
	case csClosing:
		return "DISCONNECT"
	}
	return "request"
}
