package bench

import (
	"strconv"

	"github.com/sngate/sngate/sn"
)

// topicOf appends the topic client c publishes to (publish) or the
// REGISTER topic of a sleeping client.
func (w *worker) topicOf(c *client) []byte {
	t := append(w.topic[:0], w.r.prefix...)
	if w.r.cfg.Scenario == ScenarioSleep {
		t = append(t, "/z/"...)
		t = strconv.AppendUint(t, uint64(c.idx), 10)
		w.topic = append(t, "/up"...)
		return w.topic
	}
	t = append(t, "/p/"...)
	w.topic = strconv.AppendUint(t, uint64(c.idx), 10)
	return w.topic
}

// filterOf appends the topic filter client c subscribes to.
func (w *worker) filterOf(c *client) []byte {
	t := append(w.topic[:0], w.r.prefix...)
	if w.r.cfg.Scenario == ScenarioSleep {
		t = append(t, "/z/"...)
		w.topic = strconv.AppendUint(t, uint64(c.idx), 10)
		return w.topic
	}
	w.topic = append(t, "/s"...)
	return w.topic
}

func (w *worker) id(c *client) []byte {
	w.data = clientID(w.data[:0], w.r.id, c.idx)
	return w.data
}

// begin starts the next step of a client that has a socket.
func (w *worker) begin(c *client, now int64) {
	c.tries = 0
	switch {
	case w.phase == phaseSetup && c.state == csWait:
		if w.r.cfg.QoS == -1 {
			c.state = csReady
			w.r.setupOK.Add(1)
			w.r.setupDone.Add(1)
			return
		}
		w.startRequest(c, csConnecting, now)
	case w.phase == phaseWake && c.state == csAsleep:
		w.startRequest(c, csWaking, now)
	case w.phase == phaseTeardown && c.state == csAsleep:
		if c.own {
			w.startRequest(c, csClosing, now)
		} else {
			w.startRequest(c, csRebind, now)
		}
	}
}

// startRequest moves c to a handshake state and sends its request.
func (w *worker) startRequest(c *client, st uint8, now int64) {
	if !handshake(c.state) {
		w.busy++
	}
	c.state, c.tries, c.reqAt = st, 0, now
	switch st {
	case csRegistering, csSubscribing:
		c.nextMsgID()
	}
	w.resend(c, now)
}

// resend (re)sends c's current request.
func (w *worker) resend(c *client, now int64) {
	cfg := &w.r.cfg
	c.lastTx = now
	if c.inflight > 0 {
		if c.inflight == 2 {
			w.queueFrame(c.s, &sn.Pubrel{MsgID: c.msgID}, false)
			return
		}
		w.queuePublish(c, c.reqAt, c.sent-1, true, false)
		return
	}
	switch c.state {
	case csConnecting:
		c.own = true
		w.queueFrame(c.s, &sn.Connect{CleanSession: true, ProtocolID: sn.V12, Duration: cfg.KeepAlive, ClientID: w.id(c)}, false)
	case csRegistering:
		w.queueFrame(c.s, &sn.Register{MsgID: c.msgID, TopicName: w.topicOf(c)}, false)
	case csSubscribing:
		q := max(cfg.QoS, 0)
		w.queueFrame(c.s, &sn.Subscribe{Dup: c.tries > 0, QoS: sn.QoS(q), TopicIDType: sn.TopicIDNormal,
			MsgID: c.msgID, TopicName: w.filterOf(c)}, false)
	case csToSleep:
		w.queueFrame(c.s, &sn.Disconnect{HasDuration: true, Duration: cfg.SleepDuration}, false)
	case csWaking, csRebind:
		c.own = true
		w.queueFrame(c.s, &sn.Pingreq{ClientID: w.id(c)}, false)
	case csClosing:
		w.queueFrame(c.s, &sn.Disconnect{}, false)
	}
}

// queuePublish encodes one PUBLISH of sequence number seq stamped at.
func (w *worker) queuePublish(c *client, at int64, seq uint32, dup, offer bool) {
	cfg := &w.r.cfg
	stamp(w.payload, at, c.idx, seq)
	m := sn.Publish{Dup: dup, TopicIDType: sn.TopicIDNormal, TopicID: c.topicID, Data: w.payload}
	switch cfg.QoS {
	case -1:
		// The long-topic-name extension: TopicID is the length of the
		// topic name that precedes the payload.
		t := w.topicOf(c)
		w.data = append(append(w.data[:0], t...), w.payload...)
		m.QoS, m.TopicID, m.Data = sn.QoSMinus1, uint16(len(t)), w.data
	case 0:
		m.QoS = sn.QoS0
	default:
		m.QoS, m.MsgID = sn.QoS(cfg.QoS), c.msgID
	}
	w.queueFrame(c.s, &m, offer)
}

// tickPublish sends the publish scenario's messages that are due.
func (w *worker) tickPublish(now int64) {
	cfg := &w.r.cfg
	if w.r.closedLoop {
		for i := 0; i < len(w.active); i++ {
			if c := w.active[i]; !w.trySend(c, now) && w.doneSending(c) {
				w.dropActive(i)
				i--
			}
		}
		return
	}
	n := len(w.active)
	if n == 0 {
		return
	}
	per, extra := burst, 0
	if cfg.Rate > 0 {
		w.credit += float64(now-w.lastTick) / 1e9 * cfg.Rate * float64(n)
		w.credit = min(w.credit, cfg.Rate*float64(n)*0.05+float64(n))
		k := int(w.credit)
		w.credit -= float64(k)
		per, extra = k/n, k%n
	}
	w.lastTick = now
	for i := 0; i < len(w.active); i++ {
		c := w.active[i]
		k := per
		if extra > 0 {
			k++
			extra--
		}
		if cfg.Count > 0 {
			k = min(k, cfg.Count-int(c.sent))
		}
		for ; k > 0; k-- {
			w.queuePublish(c, now, c.sent, false, true)
			c.sent++
		}
		if w.doneSending(c) {
			w.dropActive(i)
			i--
		}
	}
	// Rotate so that the clients who got the remainder change.
	if len(w.active) > 1 && cfg.Rate > 0 {
		w.active = append(w.active[1:], w.active[0])
	}
}

// burst is the frames per client per iteration when sending as fast as
// possible.
const burst = 32

func (w *worker) doneSending(c *client) bool {
	cnt := w.r.cfg.Count
	return c.state != csReady || (cnt > 0 && int(c.sent) >= cnt && c.inflight == 0)
}

func (w *worker) dropActive(i int) {
	w.active[i] = w.active[len(w.active)-1]
	w.active = w.active[:len(w.active)-1]
	w.r.finished.Add(1)
}

// trySend sends c's next closed-loop PUBLISH if it may; it reports
// whether it did.
func (w *worker) trySend(c *client, now int64) bool {
	cfg := &w.r.cfg
	if c.inflight > 0 || c.state != csReady || w.phase != phaseRun {
		return false
	}
	if cfg.Count > 0 && int(c.sent) >= cfg.Count {
		return false
	}
	if cfg.Rate > 0 {
		if now < c.nextAt {
			return false
		}
		c.nextAt = max(c.nextAt+int64(1e9/cfg.Rate), now-int64(1e9/cfg.Rate))
	}
	c.nextMsgID()
	c.inflight, c.reqAt, c.lastTx, c.tries = 1, now, now, 0
	w.queuePublish(c, now, c.sent, false, false)
	c.sent++
	w.offered++
	w.r.inflight.Add(1)
	return true
}

// onFrame handles one datagram from the gateway to client c.
func (w *worker) onFrame(c *client, b []byte, now int64) {
	p := &w.pkt
	if err := sn.Decode(b, p); err != nil {
		w.fail("malformed frame")
		return
	}
	switch p.Type {
	case sn.TypeConnack:
		w.onConnack(c, p.Connack.ReturnCode, now)
	case sn.TypeRegack:
		w.onRegack(c, &p.Regack, now)
	case sn.TypeSuback:
		w.onSuback(c, &p.Suback, now)
	case sn.TypeDisconnect:
		w.onDisconnect(c, now)
	case sn.TypeRegister:
		w.queueFrame(c.s, &sn.Regack{TopicID: p.Register.TopicID, MsgID: p.Register.MsgID}, false)
	case sn.TypePublish:
		w.onPublish(c, &p.Publish, now)
	case sn.TypePubrel:
		w.queueFrame(c.s, &sn.Pubcomp{MsgID: p.Pubrel.MsgID}, false)
	case sn.TypePuback:
		w.onPuback(c, &p.Puback, now)
	case sn.TypePubrec:
		if c.inflight == 1 && p.Pubrec.MsgID == c.msgID && w.r.cfg.QoS == 2 {
			c.inflight, c.lastTx, c.tries = 2, now, 0
			w.queueFrame(c.s, &sn.Pubrel{MsgID: c.msgID}, false)
		} else {
			w.fail("unexpected PUBREC")
		}
	case sn.TypePubcomp:
		if c.inflight == 2 && p.Pubcomp.MsgID == c.msgID {
			w.acked(c, now)
		} else {
			w.fail("unexpected PUBCOMP")
		}
	case sn.TypePingresp:
		w.onPingresp(c, now)
	case sn.TypeAdvertise, sn.TypeGWInfo:
	default:
		w.fail("unexpected " + p.Type.String())
	}
}

func (w *worker) onConnack(c *client, rc sn.ReturnCode, now int64) {
	if c.state != csConnecting {
		w.fail("unexpected CONNACK")
		return
	}
	if rc == sn.RejectedCongestion {
		// Try again after T_RETRY; it counts as a retry.
		w.fail("CONNACK rejected: congestion")
		return
	}
	if rc != sn.Accepted {
		w.fail("CONNACK " + rc.String())
		w.finishClient(c, csFailed)
		return
	}
	w.conn.add(now - c.reqAt)
	switch w.r.cfg.Scenario {
	case ScenarioConnect:
		w.finishClient(c, csReady)
	case ScenarioSubscribe:
		w.startRequest(c, csSubscribing, now)
	default:
		w.startRequest(c, csRegistering, now)
	}
}

func (w *worker) onRegack(c *client, m *sn.Regack, now int64) {
	if c.state != csRegistering || m.MsgID != c.msgID {
		w.fail("unexpected REGACK")
		return
	}
	if m.ReturnCode != sn.Accepted {
		w.fail("REGACK " + m.ReturnCode.String())
		w.finishClient(c, csFailed)
		return
	}
	c.topicID = m.TopicID
	if w.r.cfg.Scenario == ScenarioSleep {
		w.startRequest(c, csSubscribing, now)
		return
	}
	w.finishClient(c, csReady)
}

func (w *worker) onSuback(c *client, m *sn.Suback, now int64) {
	if c.state != csSubscribing || m.MsgID != c.msgID {
		w.fail("unexpected SUBACK")
		return
	}
	if m.ReturnCode != sn.Accepted {
		w.fail("SUBACK " + m.ReturnCode.String())
		w.finishClient(c, csFailed)
		return
	}
	if w.r.cfg.Scenario == ScenarioSleep {
		w.startRequest(c, csToSleep, now)
		return
	}
	w.finishClient(c, csReady)
}

func (w *worker) onDisconnect(c *client, now int64) {
	switch c.state {
	case csToSleep:
		w.finishClient(c, csAsleep)
	case csClosing:
		w.finishClient(c, csDone)
	case csRebind:
		// The gateway no longer knows the client: nothing to close.
		w.finishClient(c, csDone)
	default:
		w.fail("DISCONNECT from the gateway")
		if c.inflight > 0 {
			c.inflight = 0
			w.r.inflight.Add(-1)
		}
		w.finishClient(c, csFailed)
	}
}

func (w *worker) onPingresp(c *client, now int64) {
	switch c.state {
	case csWaking:
		w.wake.add(now - c.reqAt)
		w.finishClient(c, csDrained)
	case csRebind:
		w.startRequest(c, csClosing, now)
	}
}

func (w *worker) onPublish(c *client, m *sn.Publish, now int64) {
	switch m.QoS {
	case sn.QoS1:
		w.queueFrame(c.s, &sn.Puback{TopicID: m.TopicID, MsgID: m.MsgID}, false)
	case sn.QoS2:
		w.queueFrame(c.s, &sn.Pubrec{MsgID: m.MsgID}, false)
	}
	if c.state == csWaking {
		c.lastTx = now // the wake-up is progressing
	}
	at, from, seq, ok := unstamp(m.Data)
	if !ok {
		w.fail("foreign PUBLISH")
		return
	}
	if w.r.cfg.Scenario == ScenarioSleep && from != c.idx {
		w.fail("PUBLISH for another client")
		return
	}
	if !c.seen.add(seq) {
		w.dups++
		return
	}
	w.received++
	if w.r.cfg.Scenario == ScenarioSubscribe {
		w.lat.add(now - at)
	}
}

func (w *worker) onPuback(c *client, m *sn.Puback, now int64) {
	if c.inflight == 1 && m.MsgID == c.msgID && m.MsgID != 0 {
		if m.ReturnCode != sn.Accepted {
			w.fail("PUBACK " + m.ReturnCode.String())
			c.inflight = 0
			w.r.inflight.Add(-1)
			w.trySend(c, now)
			return
		}
		if w.r.cfg.QoS == 1 {
			w.acked(c, now)
			return
		}
	}
	if m.ReturnCode != sn.Accepted {
		w.fail("PUBACK " + m.ReturnCode.String())
		return
	}
	w.fail("unexpected PUBACK")
}

// acked completes c's closed-loop PUBLISH and sends the next one.
func (w *worker) acked(c *client, now int64) {
	w.ack.add(now - c.reqAt)
	c.inflight, c.tries = 0, 0
	w.r.inflight.Add(-1)
	w.trySend(c, now)
}
