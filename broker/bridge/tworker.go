package bridge

import (
	"context"
	"errors"
	"maps"
	"time"

	"github.com/sngate/sngate/broker"
)

// tlink is a transparent client's current upstream link.
type tlink struct {
	lk    link
	will  *broker.Will // the will it was opened with
	since time.Time
}

// run is a transparent client's worker: it keeps the upstream link in
// the state the observer asked for, sends the client's messages in order
// and ends when the client has left.
func (c *tclient) run(ctx context.Context) {
	t, b := c.t, c.t.b
	bo := backoff{min: b.cfg.MinBackoff, max: b.cfg.MaxBackoff}
	var cur *tlink
	drop := func(withWill bool) {
		if cur != nil {
			cur.lk.close(withWill)
			cur = nil
			t.connected.Add(-1)
		}
	}
	defer func() {
		drop(false) // bridge closing: the upstream session stays
		c.dropQueue("bridge: transparent queue dropped: bridge closed")
	}()
	// lost drops a failed link. The session moved to another connection
	// if the broker says so (MQTT 5 reason 0x8E), or if the link ended
	// soon after it was opened while the client did nothing here: some
	// brokers, and MQTT 3.1.1, close a taken-over connection silently, and
	// reconnecting at once would take the session back from the gateway
	// the sensor moved to.
	lost := func() {
		taken := cur.lk.takenOver()
		c.mu.Lock()
		if !taken && !c.active && time.Since(cur.since) < b.cfg.KeepAlive {
			taken = true
		}
		c.active = false
		c.moved = c.moved || taken
		c.mu.Unlock()
		if taken {
			b.log.Info("bridge: upstream session taken over: the client moved to another gateway", "client", c.id)
			b.event("t-moved", c.id)
		}
		drop(false)
	}
	for ctx.Err() == nil {
		if cur != nil {
			select {
			case <-cur.lk.done():
				lost()
			default:
			}
		}
		c.mu.Lock()
		leaving, leaveWill, moved := c.leaving, c.leaveWill, c.moved
		will, clean, busy := c.will, c.clean, len(c.pubs) > 0
		gen := c.wantGen
		c.mu.Unlock()

		if cur != nil && (clean || !sameWill(cur.will, will)) {
			drop(false) // reopen with the new will, or clean
		}
		if moved {
			drop(false)
			c.dropQueue("bridge: transparent message dropped: the session moved away")
			if leaving && c.remove() {
				b.event("t-removed", c.id)
				return
			}
			c.idle(ctx, nil, 0)
			continue
		}
		if leaving && !busy && (cur != nil || !leaveWill) {
			drop(leaveWill)
			if c.remove() {
				b.event("t-removed", c.id)
				return
			}
			continue
		}
		if cur == nil {
			lk, err := c.connect(ctx, will, clean)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				b.st.failures.Add(1)
				d := bo.next()
				b.log.Warn("bridge: transparent upstream connect failed", "client", c.id, "err", err, "retry_in", d.Round(time.Millisecond))
				c.idle(ctx, nil, d)
				continue
			}
			bo.reset()
			cur = &tlink{lk: lk, will: will, since: time.Now()}
			t.connected.Add(1)
			b.event("t-connected", c.id)
			continue
		}
		if !c.sync(ctx, cur.lk) || !c.flush(ctx, cur.lk) {
			lost() // reconnect
			continue
		}
		c.mu.Lock()
		c.doneGen = gen
		c.mu.Unlock()
		b.event("t-idle", c.id)
		c.idle(ctx, cur.lk.done(), 0)
	}
}

// idle waits for a signal, ch, d (if positive) or the end of ctx.
func (c *tclient) idle(ctx context.Context, ch <-chan struct{}, d time.Duration) {
	var tc <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		tc = tm.C
	}
	select {
	case <-c.wake:
	case <-ch:
	case <-tc:
	case <-ctx.Done():
	}
}

// connect opens the client's upstream link and, when the cluster has no
// session for it, subscribes it to all its subscriptions.
func (c *tclient) connect(ctx context.Context, will *broker.Will, clean bool) (link, error) {
	t, b := c.t, c.t.b
	c.mu.Lock()
	persistent := c.persistent
	c.mu.Unlock()
	var expiry uint32
	if persistent {
		expiry = expirySeconds(t.cfg.SessionExpiry)
	}
	lk, err := b.dial.connect(ctx, linkOptions{
		clientID:   t.cfg.ClientIDPrefix + c.id,
		cleanStart: clean,
		expiry:     expiry,
		will:       t.outWill(will),
		receiveMax: 16,
		onMessage:  c.onMessage,
	})
	if err != nil {
		return nil, err
	}
	b.st.connects.Add(1)
	c.mu.Lock()
	if clean {
		c.clean = false
	}
	if !lk.sessionPresent() {
		maps.Copy(c.toSub, c.subs)
		clear(c.toUnsub)
	}
	c.mu.Unlock()
	b.log.Debug("bridge: transparent upstream connected", "client", c.id, "mqtt", lk.version(),
		"session_present", lk.sessionPresent())
	return lk, nil
}

// sync applies the pending subscription changes upstream. It reports
// false when the link failed (the changes are kept for the next one).
func (c *tclient) sync(ctx context.Context, lk link) bool {
	t := c.t
	c.mu.Lock()
	unsubs := make([]string, 0, len(c.toUnsub))
	for f := range c.toUnsub {
		unsubs = append(unsubs, f)
	}
	subs := make([]outSub, 0, len(c.toSub))
	for f, q := range c.toSub {
		subs = append(subs, outSub{filter: f, qos: q})
	}
	clear(c.toUnsub)
	clear(c.toSub)
	c.mu.Unlock()
	restore := func() {
		c.mu.Lock()
		for _, f := range unsubs {
			if _, again := c.subs[f]; !again {
				c.toUnsub[f] = true
			}
		}
		for _, s := range subs {
			if q, ok := c.subs[s.filter]; ok {
				c.toSub[s.filter] = q
			}
		}
		c.mu.Unlock()
	}
	if len(unsubs) > 0 {
		remote := make([]string, len(unsubs))
		for i, f := range unsubs {
			remote[i] = t.remote(f)
		}
		if err := lk.unsubscribe(ctx, remote); err != nil {
			restore()
			return false
		}
	}
	if len(subs) > 0 {
		remote := make([]outSub, len(subs))
		for i, s := range subs {
			remote[i] = outSub{filter: t.remote(s.filter), qos: s.qos}
		}
		codes, err := lk.subscribe(ctx, remote)
		if err != nil {
			unsubs = nil
			restore()
			return false
		}
		for i, code := range codes {
			if code >= 0x80 && i < len(remote) {
				t.b.log.Warn("bridge: transparent upstream subscription refused", "client", c.id,
					"filter", remote[i].filter, "reason", code)
			}
		}
	}
	return true
}

// flush sends the queued messages in order, each once acknowledged
// before the next. It reports false when the link failed; the message
// that was being sent stays first in the queue.
func (c *tclient) flush(ctx context.Context, lk link) bool {
	t, b := c.t, c.t.b
	res := make(chan error, 1)
	for {
		c.mu.Lock()
		if len(c.pubs) == 0 {
			c.mu.Unlock()
			return true
		}
		m := c.pubs[0]
		c.mu.Unlock()
		err := errLinkLost
		om, live := toOut(m, t.remote(m.Topic), m.QoS, m.Retain, b.cfg.ID)
		switch {
		case !live:
			err = &rejectedError{code: 0x80, reason: "expired"}
		default:
			if err = lk.publish(ctx, om, func(e error) { res <- e }); err == nil {
				select {
				case err = <-res:
				case <-ctx.Done():
					return false
				}
			}
		}
		var rej *rejectedError
		switch {
		case err == nil:
			b.st.sent.Add(1)
		case errors.As(err, &rej):
			b.drop(false, "bridge: transparent message refused", "client", c.id, "topic", m.Topic, "err", err)
		default:
			return false
		}
		c.mu.Lock()
		c.pubs[0] = nil
		c.pubs = c.pubs[1:]
		if len(c.pubs) == 0 {
			c.pubs = nil
		}
		c.mu.Unlock()
		t.queued.Add(-1)
	}
}

// dropQueue drops the client's queued messages, counting them.
func (c *tclient) dropQueue(why string) {
	c.mu.Lock()
	n := len(c.pubs)
	c.pubs = nil
	c.mu.Unlock()
	if n > 0 {
		c.t.queued.Add(-int64(n))
		for range n {
			c.t.b.drop(false, why, "client", c.id)
		}
	}
}

// remove forgets the client if it is still leaving (no new connect came
// in meanwhile). It reports whether it did.
func (c *tclient) remove() bool {
	t := c.t
	t.mu.Lock()
	defer t.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leaving {
		return false
	}
	delete(t.m, c.id)
	t.clients.Add(-1)
	if n := len(c.pubs); n > 0 {
		t.queued.Add(-int64(n))
		c.pubs = nil
	}
	return true
}
