// Package client is an MQTT-SN 1.2 client over a connected datagram
// conn: UDP from Dial, or any net.Conn that keeps datagram boundaries (a
// DTLS conn, for instance) through New.
//
// A Client is safe for concurrent use. Requests that expect a reply
// (Connect, Register, Publish at QoS 1 and 2, Subscribe, ...) run one at a
// time, as MQTT-SN 1.2 expects; each is retransmitted every RetryInterval,
// with DUP set where the protocol has it, up to MaxRetries times. One
// goroutine reads from the conn: it answers the gateway's REGISTER, PUBLISH
// and PUBREL itself and queues incoming messages for Options.OnPublish, at
// most Options.MaxPending of them (see Stats for what a full queue costs).
//
//	c, err := client.Dial(ctx, "udp", "127.0.0.1:1884", client.Options{ClientID: "sensor-1"})
//	if err != nil { ... }
//	defer c.Close()
//	if err := c.Connect(ctx); err != nil { ... }
//	err = c.Publish(ctx, client.Topic("home/temp"), sn.QoS1, false, []byte("21.5"))
package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/sn"
)

// State is the client's view of its session with the gateway.
type State int

// Client states, as in MQTT-SN 1.2's client state machine.
const (
	Disconnected State = iota // Disconnected is the state before Connect and after Disconnect.
	Active                    // Active is the state after a successful Connect.
	Asleep                    // Asleep is the state after Sleep, and again after Wake.
	Awake                     // Awake is the state while Wake collects buffered messages.
	Lost                      // Lost is the state after keep-alive pings went unanswered.
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Disconnected:
		return "disconnected"
	case Active:
		return "active"
	case Asleep:
		return "asleep"
	case Awake:
		return "awake"
	case Lost:
		return "lost"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Client is an MQTT-SN 1.2 client bound to one gateway.
type Client struct {
	conn net.Conn
	opts Options

	req chan struct{} // a token: one request in flight at a time

	mu        sync.Mutex
	state     State
	pending   *pending
	nextID    uint16
	topics    registry
	qos2In    map[uint16]bool // incoming QoS 2 message IDs between PUBREC and PUBREL
	pingTimer *time.Timer
	epoch     time.Time    // origin of lastSend
	lastSend  atomic.Int64 // nanoseconds after epoch of the last send
	closing   bool
	closeErr  error

	wmu  sync.Mutex
	wbuf []byte

	inbox inbox

	done    chan struct{} // closed when the Client closes, by Close or on loss
	readers sync.WaitGroup
}

// pending is the request waiting for a reply.
type pending struct {
	types    uint64 // bit per sn.MsgType accepted as the reply
	msgID    uint16
	matchID  bool
	replies  chan reply    // buffered; the reader never blocks on it
	activity chan struct{} // signalled on incoming PUBLISH/REGISTER when extend is set
	extend   bool
}

type reply struct {
	frame []byte // a copy of the reply datagram
	err   error
}

func typeMask(ts ...sn.MsgType) uint64 {
	var m uint64
	for _, t := range ts {
		m |= 1 << t
	}
	return m
}

// Dial connects a datagram socket to a gateway at addr (network "udp",
// "udp4" or "udp6") and returns a Client using it. It does not send
// anything; call Connect next (or Publish at QoS -1, which needs no
// connection).
func Dial(ctx context.Context, network, addr string, opts Options) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s %s: %w", network, addr, err)
	}
	return New(conn, opts), nil
}

// New returns a Client that speaks MQTT-SN over conn, which must preserve
// datagram boundaries and be connected to one gateway. The Client owns
// conn and closes it in Close.
func New(conn net.Conn, opts Options) *Client {
	o := opts.withDefaults()
	c := &Client{
		conn:   conn,
		opts:   o,
		req:    make(chan struct{}, 1),
		topics: newRegistry(o.PredefinedTopics),
		qos2In: map[uint16]bool{},
		done:   make(chan struct{}),
		wbuf:   make([]byte, 0, 512),
		epoch:  time.Now(),
	}
	c.inbox.init(o.OnPublish, o.MaxPending)
	c.readers.Add(2)
	go c.readLoop()
	go func() {
		defer c.readers.Done()
		c.inbox.run(c.done)
	}()
	return c
}

// State returns the client's current state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Done returns a channel that is closed when the Client is closed, by
// Close or because the gateway was lost; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the Client closed: ErrClosed after Close, an error
// wrapping ErrGatewayLost after failed keep-alive pings, the read error
// when the conn failed; nil while it is open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Close closes the conn and stops the Client's goroutines. It does not
// send DISCONNECT; call Disconnect first for a clean end. Close waits for
// OnPublish to return, unless it is called while OnPublish runs.
func (c *Client) Close() error {
	return c.shutdown(ErrClosed)
}

func (c *Client) shutdown(why error) error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.closeErr = why
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	close(c.done)
	c.mu.Unlock()
	err := c.conn.Close()
	if !c.inbox.inCallback.Load() {
		c.readers.Wait()
	}
	return err
}

// Send encodes m and sends it as is, without waiting for any reply and
// without retransmission. It is meant for tests and tools that need to put
// arbitrary (even protocol-violating) sequences on the wire.
func (c *Client) Send(m sn.Message) error {
	return c.send(m)
}

// send encodes and writes one message and notes the time for keep-alive.
func (c *Client) send(m sn.Message) error {
	c.wmu.Lock()
	b, err := m.Append(c.wbuf[:0])
	if err != nil {
		c.wmu.Unlock()
		return fmt.Errorf("client: encode %s: %w", m.Type(), err)
	}
	c.wbuf = b[:0]
	_, err = c.conn.Write(b)
	c.wmu.Unlock()
	if err != nil {
		if c.isClosed() {
			return fmt.Errorf("client: send %s: %w", m.Type(), c.closedErr())
		}
		return fmt.Errorf("client: send %s: %w", m.Type(), err)
	}
	c.lastSend.Store(c.now())
	return nil
}

func (c *Client) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// acquire takes the request token for op.
func (c *Client) acquire(ctx context.Context, op string) error {
	select {
	case c.req <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("client: %s: %w", op, ctx.Err())
	case <-c.done:
		return fmt.Errorf("client: %s: %w", op, c.closedErr())
	}
}

func (c *Client) release() { <-c.req }

func (c *Client) closedErr() error {
	if err := c.Err(); err != nil && err != ErrClosed {
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return ErrClosed
}

// newMsgID returns the next message ID (never 0). Caller holds c.mu.
func (c *Client) newMsgID() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

func (c *Client) msgID() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newMsgID()
}

// exchange sends m and waits for a reply whose type is in types (and,
// when matchID is set, whose MsgId is msgID). It retransmits m every
// RetryInterval, with DUP set on PUBLISH and SUBSCRIBE, up to MaxRetries
// times. The caller holds the request token.
func (c *Client) exchange(ctx context.Context, m sn.Message, types uint64, msgID uint16, matchID bool) (*sn.Packet, error) {
	return c.exchangeExt(ctx, m, &pending{types: types, msgID: msgID, matchID: matchID})
}

func (c *Client) exchangeExt(ctx context.Context, m sn.Message, p *pending) (*sn.Packet, error) {
	p.replies = make(chan reply, 4)
	p.activity = make(chan struct{}, 1)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	c.pending = p
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.pending == p {
			c.pending = nil
		}
		c.mu.Unlock()
	}()

	if err := c.send(m); err != nil {
		return nil, err
	}
	retry := time.NewTimer(c.opts.RetryInterval)
	defer retry.Stop()
	for tries := 0; ; {
		select {
		case r := <-p.replies:
			if r.err != nil {
				return nil, r.err
			}
			pkt := new(sn.Packet)
			if err := sn.Decode(r.frame, pkt); err != nil {
				return nil, fmt.Errorf("%s reply: %w", m.Type(), err)
			}
			return pkt, nil
		case <-p.activity:
			retry.Reset(c.opts.RetryInterval)
		case <-retry.C:
			if tries >= c.opts.MaxRetries {
				return nil, fmt.Errorf("%w: %s transmitted %d time(s)", ErrNoResponse, m.Type(), tries+1)
			}
			tries++
			setDup(m)
			if err := c.send(m); err != nil {
				return nil, err
			}
			retry.Reset(c.opts.RetryInterval)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, c.closedErr()
		}
	}
}

// setDup marks a retransmitted PUBLISH or SUBSCRIBE.
func setDup(m sn.Message) {
	switch v := m.(type) {
	case *sn.Publish:
		if v.QoS == sn.QoS1 || v.QoS == sn.QoS2 {
			v.Dup = true
		}
	case *sn.Subscribe:
		v.Dup = true
	}
}

// armPing (re)starts the keep-alive timer while the client is active. It
// runs on Connect and after each keep-alive check, not on every send: the
// check itself looks at how long the client has been silent.
func (c *Client) armPing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armPingLocked(c.opts.PingInterval)
}

func (c *Client) armPingLocked(d time.Duration) {
	if c.opts.PingInterval <= 0 || c.closing || c.state != Active {
		return
	}
	if c.pingTimer == nil {
		c.pingTimer = time.AfterFunc(d, c.keepAlive)
		return
	}
	c.pingTimer.Reset(d)
}

// stopPing stops automatic pings (sleep, disconnect).
func (c *Client) stopPing() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
}

// now is a monotonic clock reading for lastSend.
func (c *Client) now() int64 { return int64(time.Since(c.epoch)) }

// keepAlive runs on the keep-alive timer. It sends PINGREQ when the client
// has been silent for PingInterval, and otherwise re-arms for the rest.
func (c *Client) keepAlive() {
	iv := c.opts.PingInterval
	c.mu.Lock()
	if c.closing || c.state != Active {
		c.mu.Unlock()
		return
	}
	if idle := time.Duration(c.now() - c.lastSend.Load()); idle < iv {
		c.armPingLocked(iv - idle)
		c.mu.Unlock()
		return
	}
	c.readers.Add(1) // safe: Close sets closing under mu before it waits
	c.mu.Unlock()
	defer c.readers.Done()

	select {
	case c.req <- struct{}{}:
	default:
		c.armPing() // a request is in flight: the gateway hears from us anyway
		return
	}
	_, err := c.exchange(context.Background(), &sn.Pingreq{}, typeMask(sn.TypePingresp), 0, false)
	c.release()
	if errors.Is(err, ErrNoResponse) {
		c.setState(Lost)
		go c.shutdown(fmt.Errorf("%w: %w", ErrGatewayLost, err))
		return
	}
	c.armPing()
}

func (c *Client) setState(s State) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

// readLoop reads datagrams until the conn closes.
func (c *Client) readLoop() {
	defer c.readers.Done()
	buf := make([]byte, c.opts.MaxPacketSize+1)
	var p sn.Packet
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			if !c.isClosed() {
				go c.shutdown(fmt.Errorf("client: read: %w", err))
			}
			return
		}
		if n > c.opts.MaxPacketSize {
			continue // oversized: ignored, like any undecodable datagram
		}
		if sn.Decode(buf[:n], &p) != nil {
			continue
		}
		c.handle(buf[:n], &p)
	}
}
