package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// A link is one upstream MQTT network connection (MQTT 5 over
// paho.golang, or 3.1.1 over paho.mqtt.golang). The bridge makes a new
// link for every connection and owns retransmission itself: what a lost
// link did not get acknowledged is sent again on the next one.
type link interface {
	// version is 5 or 4 (3.1.1).
	version() int
	// sessionPresent is the CONNACK Session Present flag.
	sessionPresent() bool
	// publish sends m. Calls from one goroutine go on the wire in call
	// order. done is called once, from another goroutine, when m is
	// acknowledged (QoS 1/2; at once for QoS 0) with nil, with an
	// *rejectedError when the broker refused it, or with errLinkLost.
	// publish may block on the broker's Receive Maximum; it returns an
	// error (and does not call done) when m could not be handed over.
	publish(ctx context.Context, m *outMsg, done func(error)) error
	// subscribe subscribes and returns one reason code per filter.
	subscribe(ctx context.Context, subs []outSub) ([]byte, error)
	// unsubscribe removes subscriptions.
	unsubscribe(ctx context.Context, filters []string) error
	// close ends the connection: with a DISCONNECT, or, with withWill,
	// so that the broker publishes the will. It waits for the link's
	// goroutines.
	close(withWill bool)
	// closeNow drops the network connection without a DISCONNECT.
	closeNow()
	// done is closed when the connection is gone.
	done() <-chan struct{}
	// takenOver reports whether the broker ended the link because another
	// connection took the session over (MQTT 5 reason 0x8E).
	takenOver() bool
}

// outMsg is a message for upstream.
type outMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	// expiry is the remaining MQTT 5 Message Expiry in seconds (0: none).
	expiry uint32
	// props are the MQTT 5 properties (nil: none); user carries the
	// origin mark.
	contentType     string
	responseTopic   string
	correlationData []byte
	payloadFormat   byte
	user            [][2]string
}

// inMsg is a message from upstream.
type inMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
	expiry  uint32 // seconds, 0 none
	// MQTT 5 properties.
	contentType     string
	responseTopic   string
	correlationData []byte
	payloadFormat   byte
	user            [][2]string
}

// outSub is one upstream subscription.
type outSub struct {
	filter string
	qos    byte
}

// linkOptions are the parameters of one upstream connection.
type linkOptions struct {
	clientID   string
	cleanStart bool
	expiry     uint32 // session expiry, seconds (MQTT 5)
	will       *outMsg
	// receiveMax bounds the QoS 1/2 messages the broker may send before
	// the bridge acknowledges them (MQTT 5).
	receiveMax uint16
	// onMessage handles a message from upstream, on the link's goroutine,
	// in order. It returns false when the message could not be taken: the
	// link is then dropped without acknowledging it, so the broker sends
	// it again.
	onMessage func(*inMsg) bool
}

// errLinkLost reports a message the link could not get acknowledged
// because the connection ended.
var errLinkLost = errors.New("bridge: upstream connection lost")

// rejectedError is an upstream refusal of a message (a PUBACK or PUBREC
// reason code of 0x80 or more, or a client-side check).
type rejectedError struct {
	code   byte
	reason string
}

func (e *rejectedError) Error() string {
	return fmt.Sprintf("bridge: upstream refused the message: reason 0x%02x %s", e.code, e.reason)
}

// errUnsupportedVersion reports a broker that refused MQTT 5.
var errUnsupportedVersion = errors.New("bridge: upstream refused MQTT 5: unsupported protocol version")

// dialer makes upstream connections.
type dialer struct {
	cfg *Config
	ep  endpoint
	tls *tls.Config
}

// dialConn opens the network connection (TCP, then TLS).
func (d *dialer) dialConn(ctx context.Context) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", d.ep.addr)
	if err != nil {
		return nil, fmt.Errorf("bridge: dial %s: %w", d.ep.addr, err)
	}
	if d.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("bridge: TLS handshake with %s: %w", d.ep.addr, err)
	}
	return tc, nil
}

// connect opens one link: MQTT 5, falling back to 3.1.1 when the broker
// refuses version 5 (ProtocolVersion 0), or the configured version.
func (d *dialer) connect(ctx context.Context, o linkOptions) (link, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	if d.cfg.ProtocolVersion != 4 {
		l, err := d.connectV5(ctx, o)
		if err == nil || d.cfg.ProtocolVersion == 5 || !errors.Is(err, errUnsupportedVersion) {
			return l, err
		}
		d.cfg.Logger.Info("bridge: upstream refused MQTT 5, retrying as 3.1.1", "url", d.cfg.URL, "client", o.clientID)
	}
	return d.connectV3(ctx, o)
}

// recorder keeps the first bytes read from a connection: a 3.1.1 broker
// answers an MQTT 5 CONNECT with a 3.1.1 CONNACK that paho.golang cannot
// parse, so the bridge looks at the raw bytes.
type recorder struct {
	net.Conn
	mu   sync.Mutex
	head []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	if k := min(n, 4-len(r.head)); k > 0 {
		r.head = append(r.head, p[:k]...)
	}
	r.mu.Unlock()
	return n, err
}

// refusedV5 reports whether the first bytes read are a 3.1.1 CONNACK with
// return code 1, "unacceptable protocol version".
func (r *recorder) refusedV5() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.head
	return len(h) == 4 && h[0] == 0x20 && h[1] == 0x02 && h[3] == 0x01
}

// backoff is an exponential backoff with full jitter.
type backoff struct {
	min, max, cur time.Duration
}

// next returns the delay before the next attempt and doubles the ceiling.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur/2 + rand.N(b.cur/2+1)
	b.cur = min(b.cur*2, b.max)
	return d
}

// reset starts over after a successful connection.
func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// expirySeconds converts a session expiry to the MQTT 5 field.
func expirySeconds(d time.Duration) uint32 {
	switch {
	case d <= 0:
		return 0
	case d >= time.Duration(0xFFFFFFFF)*time.Second:
		return 0xFFFFFFFF
	}
	return uint32((d + time.Second - 1) / time.Second)
}
