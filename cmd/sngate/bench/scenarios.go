package bench

import (
	"context"
	"strconv"
	"time"
)

// window is a measured interval: its gateway and tool figures.
type window struct {
	t0, t1   int64
	gw0, gw1 procSample
	cpu0     float64
	cpu1     float64
}

func (r *run) beginWindow(ctx context.Context, p *prober) window {
	return window{gw0: p.sample(ctx), cpu0: selfCPU(), t0: r.now()}
}

func (r *run) endWindow(ctx context.Context, p *prober, w *window) {
	w.gw1 = p.sample(ctx)
	w.cpu1 = selfCPU()
}

// gatewayFigures fills rep.Gateway and the tool's CPU from a window.
func gatewayFigures(rep *Report, p *prober, w *window, msgs uint64) {
	if msgs > 0 && w.cpu1 > 0 {
		rep.ToolCPUS = w.cpu1 - w.cpu0
		rep.ToolCPUUsPerMsg = rep.ToolCPUS * 1e6 / float64(msgs)
	}
	if p.source == "" {
		return
	}
	g := &GatewayStats{Source: p.source}
	rep.Gateway = g
	if p.lastErr != nil {
		g.Error = p.lastErr.Error()
	}
	if !w.gw0.ok || !w.gw1.ok {
		return
	}
	g.RSSBeforeBytes, g.RSSAfterBytes = w.gw0.RSS, w.gw1.RSS
	g.CPUSeconds = w.gw1.CPU - w.gw0.CPU
	if msgs > 0 {
		g.CPUUsPerMsg = g.CPUSeconds * 1e6 / float64(msgs)
	}
}

func (r *run) publishScenario(ctx context.Context, rep *Report) error {
	cfg := &r.cfg
	var sub *subscriber
	if cfg.MQTT != "" {
		var err error
		if sub, err = newSubscriber(ctx, r, r.prefix+"/p/#", byte(cfg.SubscriberQoS)); err != nil {
			return err
		}
		defer func() {
			sub.stop()
			rep.lat.merge(sub.lat)
			for k, v := range sub.errs {
				rep.Errors[k] += v
			}
			if sub.err != nil {
				rep.Errors["MQTT subscriber: connection lost"]++
			}
		}()
		rep.MQTT = cfg.MQTT
	}
	if _, err := r.setup(ctx, rep, cfg.SetupTimeout); err != nil {
		return err
	}
	p := newProber(cfg)
	win := r.beginWindow(ctx, p)
	r.setPhase(phaseRun)
	ready := int64(rep.Ready)
	r.waitUntil(ctx, cfg.Duration, func() bool { return r.finished.Load() >= ready })
	win.t1 = r.now()
	r.advance(ctx, phaseDrain)
	delivered := func() uint64 { return 0 }
	switch {
	case sub != nil:
		delivered = sub.delivered.Load
	case rep.sink != nil:
		delivered = rep.sink.publishes.Load
	}
	offered := r.offered.Load()
	last := r.drain(ctx, delivered, offered, 500*time.Millisecond)
	offered = r.offered.Load()
	r.endWindow(ctx, p, &win)
	rep.Offered = offered
	rep.DurationS = float64(win.t1-win.t0) / 1e9
	if sub != nil || rep.sink != nil {
		rep.Delivered = delivered()
		rep.deliveryS = float64(max(last, win.t1)-win.t0) / 1e9
	} else {
		rep.note("no --mqtt: only the offered rate is measured")
		rep.noDelivery = true
	}
	if sub != nil {
		rep.Duplicates = sub.dups.Load()
	}
	if rep.sink != nil {
		rep.note("the null sink counts datagrams, it has no latency")
	}
	rep.LatencyKind = "PUBLISH sent to message received by the MQTT subscriber"
	perMsg := rep.Delivered
	if rep.noDelivery {
		perMsg = rep.Offered
	}
	gatewayFigures(rep, p, &win, perMsg)
	return nil
}

func (r *run) subscribeScenario(ctx context.Context, rep *Report) error {
	cfg := &r.cfg
	if _, err := r.setup(ctx, rep, cfg.SetupTimeout); err != nil {
		return err
	}
	pub, err := newPublisher(ctx, r, byte(cfg.QoS))
	if err != nil {
		return err
	}
	defer pub.stop()
	rep.MQTT = cfg.MQTT
	p := newProber(cfg)
	win := r.beginWindow(ctx, p)
	r.setPhase(phaseRun)
	topic := r.prefix + "/s"
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'x'
	}
	var sent uint32
	end := time.Now().Add(cfg.Duration)
	var perr error
	for perr == nil && time.Now().Before(end) && ctx.Err() == nil {
		if cfg.Count > 0 && int(sent) >= cfg.Count {
			break
		}
		due := 64
		if cfg.Rate > 0 {
			due = int(cfg.Rate*float64(r.now()-win.t0)/1e9) - int(sent)
			if due <= 0 {
				time.Sleep(time.Millisecond)
				continue
			}
		}
		if cfg.Count > 0 {
			due = min(due, cfg.Count-int(sent))
		}
		for ; due > 0 && perr == nil; due-- {
			stamp(payload, r.now(), 0, sent)
			perr = pub.publish(ctx, topic, payload)
			if perr == nil {
				sent++
			}
		}
		if perr == nil {
			perr = pub.m.flush()
		}
	}
	win.t1 = r.now()
	if perr != nil {
		rep.Errors["MQTT publisher: "+perr.Error()]++
	}
	r.advance(ctx, phaseDrain)
	want := uint64(sent) * uint64(rep.Ready)
	last := r.drain(ctx, r.received.Load, want, 500*time.Millisecond)
	r.endWindow(ctx, p, &win)
	rep.Offered, rep.Delivered, rep.Duplicates = want, r.received.Load(), r.dups.Load()
	rep.DurationS = float64(win.t1-win.t0) / 1e9
	rep.deliveryS = float64(max(last, win.t1)-win.t0) / 1e9
	rep.Published = uint64(sent)
	rep.LatencyKind = "MQTT PUBLISH sent to PUBLISH received by the MQTT-SN subscriber"
	gatewayFigures(rep, p, &win, rep.Delivered)
	return nil
}

func (r *run) sleepScenario(ctx context.Context, rep *Report) error {
	cfg := &r.cfg
	p := newProber(cfg)
	base := p.sample(ctx)
	if _, err := r.setup(ctx, rep, cfg.SetupTimeout); err != nil {
		return err
	}
	asleep := p.sample(ctx)
	st := &SleepStats{Asleep: rep.Ready, PerClient: cfg.Count}
	rep.Sleep = st
	pub, err := newPublisher(ctx, r, 1)
	if err != nil {
		return err
	}
	defer pub.stop()
	rep.MQTT = cfg.MQTT
	t0 := time.Now()
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'x'
	}
	topics := make([]string, cfg.Clients)
	for i := range topics {
		topics[i] = r.prefix + "/z/" + strconv.Itoa(i)
	}
	for j := 0; j < cfg.Count; j++ {
		for i, t := range topics {
			stamp(payload, r.now(), uint32(i), uint32(j))
			if err := pub.publish(ctx, t, payload); err != nil {
				return err
			}
		}
	}
	if err := pub.waitAcked(ctx, uint64(cfg.Count)*uint64(cfg.Clients), cfg.SetupTimeout); err != nil {
		return err
	}
	st.PublishS = time.Since(t0).Seconds()
	queued := p.sample(ctx)
	win := r.beginWindow(ctx, p)
	win.gw0 = queued
	r.setPhase(phaseWake)
	ready := int64(rep.Ready)
	r.waitUntil(ctx, cfg.Duration, func() bool { return r.finished.Load() >= ready })
	win.t1 = r.now()
	r.endWindow(ctx, p, &win)
	st.Expected = uint64(rep.Ready) * uint64(cfg.Count)
	st.Drained = r.received.Load()
	st.Woken = int(r.finished.Load())
	st.Lost = st.Expected - min(st.Drained, st.Expected)
	st.DrainS = float64(win.t1-win.t0) / 1e9
	if st.DrainS > 0 {
		st.DrainPerSec = float64(st.Drained) / st.DrainS
	}
	rep.Offered, rep.Delivered, rep.Duplicates = st.Expected, st.Drained, r.dups.Load()
	rep.DurationS = st.DrainS
	rep.deliveryS = st.DrainS
	rep.LatencyKind = "PINGREQ(ClientId) sent to PINGRESP received (wake-up and drain)"
	gatewayFigures(rep, p, &win, st.Drained)
	if g := rep.Gateway; g != nil && base.ok && asleep.ok && rep.Ready > 0 {
		g.RSSBeforeBytes = base.RSS
		g.RSSAsleepBytes = asleep.RSS
		g.RSSQueuedBytes = queued.RSS
		g.BytesPerClient = float64(asleep.RSS-base.RSS) / float64(rep.Ready)
		if base.HeapGo > 0 {
			g.HeapBytesPerClient = float64(asleep.HeapGo-base.HeapGo) / float64(rep.Ready)
		}
	}
	return nil
}

func (r *run) connectScenario(ctx context.Context, rep *Report) error {
	cfg := &r.cfg
	p := newProber(cfg)
	win := r.beginWindow(ctx, p)
	took, err := r.setup(ctx, rep, cfg.Duration)
	win.t1 = r.now()
	if err != nil {
		return err
	}
	r.endWindow(ctx, p, &win)
	rep.Offered, rep.Delivered = uint64(cfg.Clients), uint64(rep.Ready)
	rep.DurationS = took.Seconds()
	rep.deliveryS = rep.DurationS
	rep.LatencyKind = "CONNECT sent to CONNACK received"
	gatewayFigures(rep, p, &win, uint64(rep.Ready))
	if g := rep.Gateway; g != nil && win.gw0.ok && win.gw1.ok && rep.Ready > 0 {
		g.BytesPerClient = float64(win.gw1.RSS-win.gw0.RSS) / float64(rep.Ready)
		if win.gw0.HeapGo > 0 {
			g.HeapBytesPerClient = float64(win.gw1.HeapGo-win.gw0.HeapGo) / float64(rep.Ready)
		}
		g.CPUUsPerMsg = 0
		if rep.Ready > 0 {
			g.CPUUsPerConnect = g.CPUSeconds * 1e6 / float64(rep.Ready)
		}
	}
	return nil
}
