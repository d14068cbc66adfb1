package radios

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// SimGateway is the node ID of the gateway endpoint of a SimMedium.
const SimGateway uint16 = 0

// ErrSimClosed is returned by endpoints of a closed medium or endpoint.
var ErrSimClosed = errors.New("radios: simulated radio closed")

// SimConfig configures a simulated radio medium. Zero fields take
// defaults.
type SimConfig struct {
	// Seed makes loss decisions reproducible: the same sequence of sends
	// loses the same frames.
	Seed uint64
	// LossRate is the probability (0..1) that a receiver misses a frame.
	LossRate float64
	// Latency delays every delivery (constant, so order is kept).
	Latency time.Duration
	// MTU is the largest frame; default 255.
	MTU int
	// LoRa, when SF is set, gives each frame an airtime charged to the
	// sender's duty-cycle budget.
	LoRa LoRaParams
	// DutyCycle limits each endpoint's airtime (e.g. 0.01); 0 = none.
	DutyCycle float64
	// NodeDutyCycle, when non-zero, replaces DutyCycle for the nodes, so
	// tests can meter the gateway alone: negative means the nodes are
	// not limited.
	NodeDutyCycle float64
	// Budget tunes the duty-cycle ledger (window, shares).
	Budget BudgetConfig
	// QueueLen bounds each endpoint's receive queue; default 256.
	// Frames arriving at a full queue are dropped and counted.
	QueueLen int
	// Now is the clock of the duty-cycle ledgers; default time.Now.
	Now func() time.Time
}

// SimFrame is a frame as an endpoint receives it.
type SimFrame struct {
	From uint16 // sender node ID (SimGateway for the gateway)
	Data []byte
}

// SimStats counts what happened on the medium.
type SimStats struct {
	Sent      uint64 // frames handed to Send and accepted
	Lost      uint64 // receptions lost to the loss rate
	Dropped   uint64 // receptions dropped at a full queue
	Delivered uint64 // receptions queued at an endpoint
	Refused   uint64 // sends refused (MTU, duty cycle, unknown node)
}

type simDelivery struct {
	at  time.Time
	to  *SimEndpoint
	frm SimFrame
}

// SimMedium is a simulated star radio network for tests and benchmarks:
// N nodes and one gateway endpoint. Uplinks go to the gateway; downlinks
// go to one node or, sent to NodeBroadcast, to every node. Loss is drawn
// from a seeded RNG; with a latency, one goroutine delivers frames in
// order. Safe for concurrent use.
type SimMedium struct {
	cfg SimConfig

	mu     sync.Mutex
	rng    *rand.Rand
	nodes  map[uint16]*SimEndpoint
	gw     *SimEndpoint
	stats  SimStats
	closed bool

	pending chan simDelivery // nil without latency
	done    chan struct{}
	wg      sync.WaitGroup
}

// SimEndpoint is one radio on the medium.
type SimEndpoint struct {
	m      *SimMedium
	id     uint16
	rx     chan SimFrame
	budget *Budget
	done   chan struct{}
	once   sync.Once
}

// NewSimMedium creates a medium; Close it to stop its goroutine.
func NewSimMedium(cfg SimConfig) *SimMedium {
	if cfg.MTU <= 0 {
		cfg.MTU = 255
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &SimMedium{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9E3779B97F4A7C15)),
		nodes: make(map[uint16]*SimEndpoint),
		done:  make(chan struct{}),
	}
	m.gw = m.newEndpoint(SimGateway)
	if cfg.Latency > 0 {
		m.pending = make(chan simDelivery, cfg.QueueLen*4)
		m.wg.Add(1)
		go m.deliverLoop()
	}
	return m
}

func (m *SimMedium) newEndpoint(id uint16) *SimEndpoint {
	e := &SimEndpoint{m: m, id: id, rx: make(chan SimFrame, m.cfg.QueueLen), done: make(chan struct{})}
	duty := m.cfg.DutyCycle
	if id != SimGateway && m.cfg.NodeDutyCycle != 0 {
		duty = m.cfg.NodeDutyCycle
	}
	if duty > 0 {
		e.budget = NewBudget(SubBand{Name: "sim", DutyCycle: duty}, m.cfg.Budget)
	}
	return e
}

// Config returns the medium's configuration with defaults filled in.
func (m *SimMedium) Config() SimConfig { return m.cfg }

// Gateway returns the gateway endpoint.
func (m *SimMedium) Gateway() *SimEndpoint { return m.gw }

// Node returns the endpoint of node id (1..0xFFFE), creating it.
func (m *SimMedium) Node(id uint16) (*SimEndpoint, error) {
	if id == SimGateway || id == NodeBroadcast {
		return nil, fmt.Errorf("radios: simulated node ID 0x%04X reserved", id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrSimClosed
	}
	e := m.nodes[id]
	if e == nil {
		e = m.newEndpoint(id)
		m.nodes[id] = e
	}
	return e, nil
}

// Stats returns the counters.
func (m *SimMedium) Stats() SimStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Close stops the medium; every endpoint's Recv returns ErrSimClosed.
func (m *SimMedium) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	eps := []*SimEndpoint{m.gw}
	for _, e := range m.nodes {
		eps = append(eps, e)
	}
	m.mu.Unlock()
	close(m.done)
	m.wg.Wait()
	for _, e := range eps {
		e.Close()
	}
}

func (m *SimMedium) deliverLoop() {
	defer m.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		select {
		case <-m.done:
			return
		case d := <-m.pending:
			if wait := time.Until(d.at); wait > 0 {
				t.Reset(wait)
				select {
				case <-m.done:
					return
				case <-t.C:
				}
			}
			m.enqueue(d.to, d.frm)
		}
	}
}

// enqueue queues f at to and reports whether it fitted.
func (m *SimMedium) enqueue(to *SimEndpoint, f SimFrame) bool {
	select {
	case to.rx <- f:
		m.mu.Lock()
		m.stats.Delivered++
		m.mu.Unlock()
		return true
	default:
		m.mu.Lock()
		m.stats.Dropped++
		m.mu.Unlock()
		return false
	}
}

// ID returns the endpoint's node ID.
func (e *SimEndpoint) ID() uint16 { return e.id }

// Budget returns the endpoint's duty-cycle ledger (nil without a duty
// cycle).
func (e *SimEndpoint) Budget() *Budget { return e.budget }

// Airtime returns the time on air of an n-byte frame (0 without LoRa
// parameters).
func (e *SimEndpoint) Airtime(n int) time.Duration {
	if e.m.cfg.LoRa.SF == 0 {
		return 0
	}
	return e.m.cfg.LoRa.Airtime(n)
}

// Send transmits p (copied) to node to: the gateway sends to a node ID or
// NodeBroadcast, a node sends to SimGateway. It fails with
// ErrFrameTooLarge, ErrDutyCycle or ErrSimClosed.
func (e *SimEndpoint) Send(to uint16, p []byte, prio Priority) error {
	_, err := e.send(to, p, prio)
	return err
}

// SendAcked is Send that also reports whether the frame reached its
// receiver, as a radio with link-layer acknowledgements (XBee) learns:
// false when a unicast was lost to the loss rate or dropped at the
// receiver's full queue (without latency). A broadcast counts as acked
// when any node got it.
func (e *SimEndpoint) SendAcked(to uint16, p []byte, prio Priority) (bool, error) {
	n, err := e.send(to, p, prio)
	return n > 0, err
}

// send is Send, returning the number of receivers that got the frame.
func (e *SimEndpoint) send(to uint16, p []byte, prio Priority) (int, error) {
	m := e.m
	if len(p) > m.cfg.MTU {
		m.count(func(s *SimStats) { s.Refused++ })
		return 0, fmt.Errorf("%w: %d bytes, MTU %d", ErrFrameTooLarge, len(p), m.cfg.MTU)
	}
	if e.budget != nil {
		if err := e.budget.Reserve(e.Airtime(len(p)), prio, m.cfg.Now()); err != nil {
			m.count(func(s *SimStats) { s.Refused++ })
			return 0, err
		}
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return 0, ErrSimClosed
	}
	var targets []*SimEndpoint
	switch {
	case e.id != SimGateway:
		if to != SimGateway {
			m.stats.Refused++
			m.mu.Unlock()
			return 0, fmt.Errorf("radios: simulated node 0x%04X can only reach the gateway", e.id)
		}
		targets = []*SimEndpoint{m.gw}
	case to == NodeBroadcast:
		targets = make([]*SimEndpoint, 0, len(m.nodes))
		for _, n := range m.nodes {
			targets = append(targets, n)
		}
		sortEndpoints(targets) // deterministic loss draws
	default:
		n := m.nodes[to]
		if n == nil {
			m.stats.Refused++
			m.mu.Unlock()
			return 0, fmt.Errorf("radios: simulated node 0x%04X unknown", to)
		}
		targets = []*SimEndpoint{n}
	}
	m.stats.Sent++
	keep := targets[:0]
	for _, t := range targets {
		if m.cfg.LossRate > 0 && m.rng.Float64() < m.cfg.LossRate {
			m.stats.Lost++
			continue
		}
		keep = append(keep, t)
	}
	m.mu.Unlock()
	if len(keep) == 0 {
		return 0, nil
	}
	data := append([]byte(nil), p...)
	got := 0
	for _, t := range keep {
		f := SimFrame{From: e.id, Data: data}
		if m.pending == nil {
			if m.enqueue(t, f) {
				got++
			}
			continue
		}
		select {
		case m.pending <- simDelivery{at: time.Now().Add(m.cfg.Latency), to: t, frm: f}:
			got++
		default:
			m.count(func(s *SimStats) { s.Dropped++ })
		}
	}
	return got, nil
}

func (m *SimMedium) count(f func(*SimStats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

func sortEndpoints(s []*SimEndpoint) {
	slices.SortFunc(s, func(a, b *SimEndpoint) int { return int(a.id) - int(b.id) })
}

// Recv blocks until a frame arrives or the endpoint is closed. The frame
// data is shared by every receiver of a broadcast: do not modify it.
func (e *SimEndpoint) Recv() (SimFrame, error) {
	select {
	case f := <-e.rx:
		return f, nil
	case <-e.done:
		return SimFrame{}, ErrSimClosed
	}
}

// C returns the endpoint's receive channel, for select loops.
func (e *SimEndpoint) C() <-chan SimFrame { return e.rx }

// Close closes the endpoint: Recv returns ErrSimClosed.
func (e *SimEndpoint) Close() { e.once.Do(func() { close(e.done) }) }

// Done is closed when the endpoint is closed.
func (e *SimEndpoint) Done() <-chan struct{} { return e.done }
