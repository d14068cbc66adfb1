package radios

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Priority orders downlinks on metered links; lower values go first. The
// values mirror transport.Priority one to one (radios does not import
// transport): 0 acknowledgements, 1 deliveries, 2 gateway REGISTER,
// 3 ADVERTISE/GWINFO. Convert with Priority(p).
type Priority uint8

// Downlink priorities, highest first.
const (
	PriorityAck       Priority = iota // CONNACK, PUBACK, PUBREC/REL/COMP, SUBACK, PINGRESP ...
	PriorityDelivery                  // PUBLISH to a client
	PriorityRegister                  // gateway-initiated REGISTER
	PriorityAdvertise                 // ADVERTISE, GWINFO
	// NumPriorities is the number of priority levels.
	NumPriorities = 4
)

// Errors of the airtime budget.
var (
	// ErrDutyCycle: the sub-band budget cannot take the frame now (the
	// serial link maps it to transport.ErrCongested).
	ErrDutyCycle = errors.New("radios: duty-cycle budget exhausted")
	// ErrDwellTime: the frame is longer on air than the band allows.
	ErrDwellTime = errors.New("radios: frame exceeds the maximum dwell time")
	// ErrNoSubBand: the frequency is outside every sub-band of the region.
	ErrNoSubBand = errors.New("radios: frequency outside the region's sub-bands")
	// ErrQueueFull: a bounded transmit queue is full.
	ErrQueueFull = errors.New("radios: transmit queue full")
)

// SubBand is a frequency range with one transmit limit.
type SubBand struct {
	Name  string
	MinHz uint32 // inclusive
	MaxHz uint32 // inclusive
	// DutyCycle is the fraction of the window a transmitter may use,
	// e.g. 0.01 for 1 %; 0 or >= 1 means unlimited.
	DutyCycle float64
	// Dwell is the maximum time on air of one frame; 0 means no limit.
	Dwell time.Duration
}

// Region is a set of sub-bands with their limits, as a plain struct so
// deployments outside the built-in regions can describe their own.
type Region struct {
	Name     string
	SubBands []SubBand
}

// Built-in regions.
var (
	// EU868 holds the ETSI EN 300 220 / ERC Rec 70-03 sub-bands for
	// 863-870 MHz, duty cycle over one hour per transmitter.
	EU868 = Region{Name: "EU868", SubBands: []SubBand{
		{Name: "863-865", MinHz: 863_000_000, MaxHz: 865_000_000, DutyCycle: 0.001},
		{Name: "865-868", MinHz: 865_000_001, MaxHz: 867_999_999, DutyCycle: 0.01},
		{Name: "868.0-868.6", MinHz: 868_000_000, MaxHz: 868_600_000, DutyCycle: 0.01},
		{Name: "868.7-869.2", MinHz: 868_700_000, MaxHz: 869_200_000, DutyCycle: 0.001},
		{Name: "869.4-869.65", MinHz: 869_400_000, MaxHz: 869_650_000, DutyCycle: 0.10},
		{Name: "869.7-870", MinHz: 869_700_000, MaxHz: 870_000_000, DutyCycle: 0.01},
	}}
	// US915 has no duty cycle but a 400 ms dwell time per frame.
	US915 = Region{Name: "US915", SubBands: []SubBand{
		{Name: "902-928", MinHz: 902_000_000, MaxHz: 928_000_000, Dwell: 400 * time.Millisecond},
	}}
	// Unlimited is a region without limits, for tests and licensed bands.
	Unlimited = Region{Name: "none", SubBands: []SubBand{
		{Name: "all", MinHz: 0, MaxHz: ^uint32(0)},
	}}
)

// RegionByName returns a built-in region: "EU868", "US915" or "none".
func RegionByName(name string) (Region, error) {
	switch strings.ToUpper(name) {
	case "EU868", "EU863-870":
		return EU868, nil
	case "US915", "US902-928":
		return US915, nil
	case "NONE", "":
		return Unlimited, nil
	}
	return Region{}, fmt.Errorf("radios: unknown region %q (want EU868, US915 or none)", name)
}

// SubBandFor returns the sub-band containing freqHz.
func (r Region) SubBandFor(freqHz uint32) (SubBand, error) {
	for _, sb := range r.SubBands {
		if freqHz >= sb.MinHz && freqHz <= sb.MaxHz {
			return sb, nil
		}
	}
	return SubBand{}, fmt.Errorf("%w: %d Hz in %s", ErrNoSubBand, freqHz, r.Name)
}

// BudgetConfig tunes an airtime budget. Zero fields take defaults.
type BudgetConfig struct {
	// Window is the sliding accounting window; default one hour.
	Window time.Duration
	// Buckets is the window's resolution; default 60 (one minute each
	// for an hour). Accounting is conservative: a transmission counts
	// until its whole bucket has left the window.
	Buckets int
	// Shares is the fraction of the budget each priority may fill, so
	// acknowledgements still go out when ADVERTISE no longer may.
	// Default 1.0, 0.9, 0.75, 0.5.
	Shares [NumPriorities]float64
	// MinRetry is the floor of RetryInterval; default 10 s.
	MinRetry time.Duration
}

// DefaultShares is the default budget share per priority.
var DefaultShares = [NumPriorities]float64{1.0, 0.9, 0.75, 0.5}

func (c BudgetConfig) withDefaults() BudgetConfig {
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.Buckets <= 0 {
		c.Buckets = 60
	}
	if c.Buckets > 3600 {
		c.Buckets = 3600
	}
	if c.Shares == ([NumPriorities]float64{}) {
		c.Shares = DefaultShares
	}
	if c.MinRetry <= 0 {
		c.MinRetry = 10 * time.Second
	}
	return c
}

type bucket struct {
	idx  int64 // bucket number since the Unix epoch
	used time.Duration
}

// Budget is the airtime ledger of one transmitter on one sub-band: a
// sliding window in fixed buckets, so memory is constant. It is safe for
// concurrent use. Times are passed in, which keeps it deterministic.
type Budget struct {
	mu       sync.Mutex
	band     SubBand
	cfg      BudgetConfig
	limit    time.Duration
	width    time.Duration
	ring     []bucket // Buckets+1 entries, by idx modulo len
	used     time.Duration
	sent     uint64
	rejected [NumPriorities]uint64
}

// NewBudget returns an empty budget for band.
func NewBudget(band SubBand, cfg BudgetConfig) *Budget {
	cfg = cfg.withDefaults()
	b := &Budget{band: band, cfg: cfg, width: cfg.Window / time.Duration(cfg.Buckets)}
	if b.width <= 0 {
		b.width = time.Millisecond
	}
	b.ring = make([]bucket, cfg.Buckets+1)
	if band.DutyCycle > 0 && band.DutyCycle < 1 {
		b.limit = time.Duration(float64(cfg.Window) * band.DutyCycle)
	}
	return b
}

// SubBand returns the band the budget accounts for.
func (b *Budget) SubBand() SubBand { return b.band }

// Unlimited reports whether the band has no duty cycle.
func (b *Budget) Unlimited() bool { return b.limit == 0 }

// Limit returns the airtime allowed per window (0 when unlimited).
func (b *Budget) Limit() time.Duration { return b.limit }

// expire drops buckets that left the window; b.mu is held.
func (b *Budget) expire(now time.Time) int64 {
	cur := now.UnixNano() / int64(b.width)
	oldest := cur - int64(b.cfg.Buckets)
	for i := range b.ring {
		if e := &b.ring[i]; e.used > 0 && e.idx < oldest {
			b.used -= e.used
			*e = bucket{}
		}
	}
	return cur
}

// Used returns the airtime counted in the current window.
func (b *Budget) Used(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	return b.used
}

// Remaining returns the airtime still allowed in the window for
// acknowledgements (the full share); -1 when unlimited.
func (b *Budget) Remaining(now time.Time) time.Duration {
	if b.limit == 0 {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	return max(b.limit-b.used, 0)
}

// Sent returns the number of frames accounted.
func (b *Budget) Sent() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sent
}

// Rejected returns the number of frames refused at priority p.
func (b *Budget) Rejected(p Priority) uint64 {
	if p >= NumPriorities {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rejected[p]
}

func (b *Budget) cap(p Priority) time.Duration {
	if p >= NumPriorities {
		p = NumPriorities - 1
	}
	return time.Duration(float64(b.limit) * b.cfg.Shares[p])
}

// Reserve charges airtime to the budget if priority p may still send
// it now, and otherwise returns an error wrapping ErrDutyCycle (or
// ErrDwellTime when the frame can never be sent on this band).
func (b *Budget) Reserve(airtime time.Duration, p Priority, now time.Time) error {
	if b.band.Dwell > 0 && airtime > b.band.Dwell {
		return fmt.Errorf("%w: %v on air, %s allows %v", ErrDwellTime, airtime, b.band.Name, b.band.Dwell)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.expire(now)
	if b.limit > 0 && b.used+airtime > b.cap(p) {
		if p < NumPriorities {
			b.rejected[p]++
		}
		return fmt.Errorf("%w: %s used %v of %v, frame needs %v", ErrDutyCycle, b.band.Name, b.used, b.limit, airtime)
	}
	e := &b.ring[int(cur%int64(len(b.ring)))]
	if e.idx != cur {
		b.used -= e.used
		*e = bucket{idx: cur}
	}
	e.used += airtime
	b.used += airtime
	b.sent++
	return nil
}

// WaitTime returns how long until Reserve(airtime, p) would succeed,
// assuming nothing else is sent; 0 if it would succeed now and -1 if it
// never can (the frame is larger than the priority's share).
func (b *Budget) WaitTime(airtime time.Duration, p Priority, now time.Time) time.Duration {
	if b.band.Dwell > 0 && airtime > b.band.Dwell {
		return -1
	}
	if b.limit == 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expire(now)
	c := b.cap(p)
	if airtime > c {
		return -1
	}
	excess := b.used + airtime - c
	if excess <= 0 {
		return 0
	}
	// Free the oldest buckets until the excess is covered.
	ents := make([]bucket, 0, len(b.ring))
	for _, e := range b.ring {
		if e.used > 0 {
			ents = append(ents, e)
		}
	}
	sortBuckets(ents)
	for _, e := range ents {
		excess -= e.used
		if excess <= 0 {
			free := time.Unix(0, (e.idx+int64(b.cfg.Buckets)+1)*int64(b.width))
			return max(free.Sub(now), 0)
		}
	}
	return b.cfg.Window
}

func sortBuckets(s []bucket) {
	slices.SortFunc(s, func(a, b bucket) int { return cmp.Compare(a.idx, b.idx) })
}

// RetryInterval suggests a retransmission timer for a request of the
// given airtime: MinRetry plus the off-time the duty cycle imposes after
// such a frame (airtime / duty cycle, e.g. 100x at 1 %), plus the wait
// for the budget when it is exhausted now. It grows with airtime: at 1 %
// a 27-byte frame gives about 17 s at SF7 and 175 s at SF12.
func (b *Budget) RetryInterval(airtime time.Duration, now time.Time) time.Duration {
	t := b.cfg.MinRetry + airtime
	if b.limit > 0 {
		t = b.cfg.MinRetry + time.Duration(float64(airtime)/b.band.DutyCycle)
		if w := b.WaitTime(airtime, PriorityDelivery, now); w > 0 {
			t += w
		}
	}
	return t
}

// DutyCycle keeps one Budget per sub-band of a region for one
// transmitter (a link); a concentrator that sends on several frequencies
// is charged per sub-band. Safe for concurrent use.
type DutyCycle struct {
	mu      sync.Mutex
	region  Region
	cfg     BudgetConfig
	budgets map[string]*Budget
}

// NewDutyCycle returns the ledgers of one transmitter in region.
func NewDutyCycle(region Region, cfg BudgetConfig) *DutyCycle {
	return &DutyCycle{region: region, cfg: cfg, budgets: make(map[string]*Budget, len(region.SubBands))}
}

// Budget returns the ledger of the sub-band containing freqHz.
func (d *DutyCycle) Budget(freqHz uint32) (*Budget, error) {
	sb, err := d.region.SubBandFor(freqHz)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.budgets[sb.Name]
	if b == nil {
		b = NewBudget(sb, d.cfg)
		d.budgets[sb.Name] = b
	}
	return b, nil
}

// Reserve charges airtime on the sub-band of freqHz (see Budget.Reserve).
func (d *DutyCycle) Reserve(freqHz uint32, airtime time.Duration, p Priority, now time.Time) error {
	b, err := d.Budget(freqHz)
	if err != nil {
		return err
	}
	return b.Reserve(airtime, p, now)
}

// TxQueue is a bounded priority queue of pending transmissions: FIFO
// within a priority, lower priority values first. Not safe for
// concurrent use; the owner locks.
type TxQueue[T any] struct {
	levels [NumPriorities][]T
	heads  [NumPriorities]int
	n, max int
}

// NewTxQueue returns a queue holding at most capacity items (min 1).
func NewTxQueue[T any](capacity int) *TxQueue[T] {
	return &TxQueue[T]{max: max(capacity, 1)}
}

// Len returns the number of queued items.
func (q *TxQueue[T]) Len() int { return q.n }

// Push queues v at priority p (clamped to the lowest priority), or
// returns ErrQueueFull.
func (q *TxQueue[T]) Push(p Priority, v T) error {
	if q.n >= q.max {
		return ErrQueueFull
	}
	if p >= NumPriorities {
		p = NumPriorities - 1
	}
	q.levels[p] = append(q.levels[p], v)
	q.n++
	return nil
}

// Pop removes and returns the first item of the highest priority.
func (q *TxQueue[T]) Pop() (v T, p Priority, ok bool) {
	for i := range q.levels {
		l := q.levels[i]
		h := q.heads[i]
		if h == len(l) {
			continue
		}
		v = l[h]
		var zero T
		l[h] = zero
		h++
		if h == len(l) {
			q.levels[i], q.heads[i] = l[:0], 0
		} else if h > 32 && h > len(l)/2 {
			q.levels[i], q.heads[i] = l[:copy(l, l[h:])], 0
		} else {
			q.heads[i] = h
		}
		q.n--
		return v, Priority(i), true
	}
	return v, 0, false
}
