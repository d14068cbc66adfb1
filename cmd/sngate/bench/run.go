package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Phases of a run, stepped by the coordinator and followed by the
// workers.
const (
	phaseIdle int32 = iota
	phaseSetup
	phaseRun
	phaseWake
	phaseDrain
	phaseTeardown
	phaseStop
)

// run is the state shared by the coordinator and the workers.
type run struct {
	cfg        Config
	id         uint32
	prefix     string
	epoch      time.Time
	pooled     bool // fewer sockets than clients
	closedLoop bool // publish at QoS 1/2
	log        *slog.Logger

	phase                     atomic.Int32
	setupDone, setupOK        atomic.Int64
	offered, received, dups   atomic.Uint64
	finished, inflight        atomic.Int64
	toClose, closed, tornDown atomic.Int64
	entered                   [phaseStop + 1]atomic.Int64 // workers that entered each phase
	workers                   []*worker
	wg                        sync.WaitGroup
	started                   bool
	sockets                   int
	sources                   int
}

// now is the run's monotonic clock in nanoseconds; payload timestamps use
// it, so every measuring goroutine shares one clock.
func (r *run) now() int64 { return int64(time.Since(r.epoch)) }

func (r *run) setPhase(p int32) { r.phase.Store(p) }

// advance moves the workers to phase p and waits until each has entered
// it, so nothing a worker does afterwards belongs to the previous phase.
func (r *run) advance(ctx context.Context, p int32) {
	r.setPhase(p)
	n := int64(len(r.workers))
	r.waitUntil(ctx, 2*time.Second, func() bool { return r.entered[p].Load() >= n })
}

// Run performs one benchmark run and returns its report. It is bounded by
// cfg.Duration (the measured phase), cfg.SetupTimeout (the phases around
// it) and ctx.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, id: runID(), epoch: time.Now(), log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.prefix = cfg.TopicPrefix + "/" + strconv.FormatUint(uint64(r.id), 36)
	rep := newReport(&r.cfg)
	switch {
	case cfg.Local:
		l, err := StartLocal(LocalConfig{})
		if err != nil {
			return nil, err
		}
		defer l.Close()
		r.cfg.Gateway, r.cfg.MQTT = l.SNAddr, l.MQTTAddr
		rep.Target = "in-process sngate at " + l.SNAddr
	case cfg.NullSink:
		s, err := startNullSink()
		if err != nil {
			return nil, err
		}
		defer s.close()
		r.cfg.Gateway, r.cfg.MQTT = s.addr(), ""
		rep.Target = "null sink at " + s.addr()
		rep.sink = s
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	defer r.stop()
	rep.Sockets, rep.Sources, rep.Workers = r.sockets, r.sources, len(r.workers)
	if r.pooled {
		rep.note(fmt.Sprintf("%d clients share %d UDP sockets: a client holds one only while it talks "+
			"(sleeping and idle clients need none), and wakes or reconnects from whichever is free",
			cfg.Clients, r.sockets))
	}
	r.wg.Add(len(r.workers))
	for _, w := range r.workers {
		go func() {
			defer r.wg.Done()
			w.loop()
		}()
	}
	r.started = true
	r.log.Info("bench starting", "scenario", cfg.Scenario, "target", r.cfg.Gateway, "clients", cfg.Clients,
		"sockets", r.sockets, "workers", len(r.workers))
	switch cfg.Scenario {
	case ScenarioPublish:
		err = r.publishScenario(ctx, rep)
	case ScenarioSubscribe:
		err = r.subscribeScenario(ctx, rep)
	case ScenarioSleep:
		err = r.sleepScenario(ctx, rep)
	case ScenarioConnect:
		err = r.connectScenario(ctx, rep)
	}
	if err == nil || ctx.Err() == nil {
		r.teardown(ctx, rep)
	}
	r.stop()
	r.collect(rep)
	return rep, err
}

func runID() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) % 46656 // three base-36 digits
}

// open creates the workers and the sockets.
func (r *run) open() error {
	cfg := &r.cfg
	gw, err := resolveUDP(cfg.Gateway)
	if err != nil {
		return err
	}
	srcs, err := sourceAddrs(cfg, gw, r.id)
	if err != nil {
		return err
	}
	r.sources = max(len(srcs), 1)
	limit := fdLimit() - 256
	n := cfg.Sockets
	if n == 0 {
		n = min(cfg.Clients, limit)
	}
	n = min(n, cfg.Clients)
	if n > limit {
		return fmt.Errorf("bench: %d sockets exceed the open-file limit (%d): raise 'ulimit -n' or lower --sockets", n, limit+256)
	}
	r.sockets = n
	r.pooled = n < cfg.Clients
	if r.pooled && (cfg.Scenario == ScenarioPublish || cfg.Scenario == ScenarioSubscribe) {
		return fmt.Errorf("bench: the %s scenario needs a socket per client, and %d clients exceed %d sockets "+
			"(open-file limit %d): lower --clients or raise 'ulimit -n'", cfg.Scenario, cfg.Clients, n, limit+256)
	}
	r.closedLoop = cfg.Scenario == ScenarioPublish && cfg.QoS >= 1
	nw := min(cfg.Workers, n)
	window := max(1, cfg.Window/nw)
	for i := 0; i < nw; i++ {
		w, err := newWorker(r, 64)
		if err != nil {
			r.closeUnstarted()
			return fmt.Errorf("bench: worker: %w", err)
		}
		w.window = window
		r.workers = append(r.workers, w)
	}
	for i := 0; i < cfg.Clients; i++ {
		w := r.workers[i%nw]
		w.clients = append(w.clients, &client{idx: uint32(i)})
	}
	rcvbuf := 0
	if cfg.Scenario == ScenarioSubscribe && n <= 1000 {
		rcvbuf = 1 << 20
	}
	for i := 0; i < n; i++ {
		var src netip.Addr
		if len(srcs) > 0 {
			src = srcs[i%len(srcs)]
		}
		fd, err := openSock(src, gw, rcvbuf)
		if err == nil {
			err = r.workers[i%nw].addSock(fd)
			if err != nil {
				closeSock(fd)
			}
		}
		if err != nil {
			r.closeUnstarted()
			if errors.Is(err, ErrUnsupported) {
				return err
			}
			return fmt.Errorf("bench: socket %d of %d to %v: %w", i+1, n, gw, err)
		}
	}
	return nil
}

// closeUnstarted releases the workers' resources when they never ran.
func (r *run) closeUnstarted() {
	for _, w := range r.workers {
		w.close()
	}
	r.workers = nil
}

// stop ends the workers (idempotent).
func (r *run) stop() {
	if !r.started {
		r.closeUnstarted()
		return
	}
	r.setPhase(phaseStop)
	r.wg.Wait()
}

// waitUntil polls cond until it holds, limit passes or ctx ends, and
// reports whether cond held.
func (r *run) waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// setup runs the setup phase: every client connects and gets ready.
func (r *run) setup(ctx context.Context, rep *Report, limit time.Duration) (time.Duration, error) {
	t0 := time.Now()
	r.setPhase(phaseSetup)
	n := int64(r.cfg.Clients)
	r.waitUntil(ctx, limit, func() bool { return r.setupDone.Load() >= n })
	took := time.Since(t0)
	rep.SetupS = took.Seconds()
	rep.Ready = int(r.setupOK.Load())
	r.log.Info("bench setup done", "ready", rep.Ready, "clients", n, "took", took.Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		return took, err
	}
	if rep.Ready == 0 {
		return took, fmt.Errorf("bench: no client finished its setup within %v (is a gateway at %s?)", limit, r.cfg.Gateway)
	}
	if int64(rep.Ready) < n {
		rep.note(fmt.Sprintf("%d of %d clients did not finish their setup", n-int64(rep.Ready), n))
	}
	return took, nil
}

// drain waits, after the sending stopped, until nothing is in flight and
// the delivered count reaches want or stops moving for quiet. It returns
// the run-clock time of the last change of delivered.
func (r *run) drain(ctx context.Context, delivered func() uint64, want uint64, quiet time.Duration) int64 {
	last, lastAt := delivered(), r.now()
	r.waitUntil(ctx, r.cfg.Drain, func() bool {
		d := delivered()
		now := r.now()
		if d != last {
			last, lastAt = d, now
		}
		if r.inflight.Load() > 0 {
			return false
		}
		return d >= want || time.Duration(now-lastAt) >= quiet
	})
	return lastAt
}

// teardown disconnects every client that has a session.
func (r *run) teardown(ctx context.Context, rep *Report) {
	t0 := time.Now()
	r.setPhase(phaseTeardown)
	nw := int64(len(r.workers))
	limit := min(r.cfg.SetupTimeout, 10*time.Second+time.Duration(r.cfg.Clients)*100*time.Microsecond)
	ok := r.waitUntil(ctx, limit, func() bool {
		return r.tornDown.Load() == nw && r.closed.Load() >= r.toClose.Load()
	})
	if !ok && r.tornDown.Load() == nw {
		rep.note(fmt.Sprintf("teardown: %d of %d sessions not confirmed closed", r.toClose.Load()-r.closed.Load(), r.toClose.Load()))
	}
	r.log.Info("bench teardown done", "closed", r.closed.Load(), "took", time.Since(t0).Round(time.Millisecond))
}

// collect merges the workers' histograms and errors into rep.
func (r *run) collect(rep *Report) {
	for _, w := range r.workers {
		rep.lat.merge(w.lat)
		rep.ack.merge(w.ack)
		rep.wake.merge(w.wake)
		rep.conn.merge(w.conn)
		for k, v := range w.errs {
			rep.Errors[k] += v
		}
	}
	rep.finish()
}
