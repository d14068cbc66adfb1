package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// v3link is an MQTT 3.1.1 link over paho.mqtt.golang, the fallback for
// brokers that refuse MQTT 5. It has no No Local and no user properties:
// loops are prevented by topic prefixes (see the package doc).
type v3link struct {
	c       mqtt.Client
	raw     net.Conn
	present bool
	end     chan struct{}
	endOnce sync.Once
	closing sync.Once
	waiters sync.WaitGroup
}

// connectV3 opens an MQTT 3.1.1 link on a connection the bridge dials
// itself (paho.mqtt.golang's own reconnect is off: the bridge reconnects).
func (d *dialer) connectV3(ctx context.Context, o linkOptions) (link, error) {
	raw, err := d.dialConn(ctx)
	if err != nil {
		return nil, err
	}
	l := &v3link{raw: raw, end: make(chan struct{})}
	var used atomic.Bool
	opts := mqtt.NewClientOptions()
	opts.AddBroker("tcp://" + d.ep.addr) // never dialled by paho: see below
	opts.SetCustomOpenConnectionFn(func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
		if used.Swap(true) {
			return nil, errors.New("bridge: one connection per link")
		}
		return raw, nil
	})
	opts.SetProtocolVersion(4)
	opts.SetClientID(o.clientID)
	opts.SetCleanSession(o.cleanStart)
	opts.SetUsername(d.cfg.Username)
	opts.SetPassword(d.cfg.Password)
	opts.SetKeepAlive(d.cfg.KeepAlive)
	opts.SetConnectTimeout(d.cfg.ConnectTimeout)
	opts.SetWriteTimeout(d.cfg.ConnectTimeout)
	opts.SetAutoReconnect(false)
	opts.SetConnectRetry(false)
	opts.SetResumeSubs(false)
	opts.SetOrderMatters(true)
	opts.SetStore(mqtt.NewMemoryStore())
	opts.SetConnectionLostHandler(func(mqtt.Client, error) { l.markEnd() })
	opts.SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
		in := &inMsg{topic: m.Topic(), payload: m.Payload(), qos: m.Qos(), retain: m.Retained()}
		if !o.onMessage(in) {
			l.closeNow() // no acknowledgement: the broker sends it again
		}
	})
	if w := o.will; w != nil {
		opts.SetBinaryWill(w.topic, w.payload, w.qos, w.retain)
	}
	l.c = mqtt.NewClient(opts)
	tok := l.c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		raw.Close()
		<-tok.Done()
		return nil, fmt.Errorf("bridge: MQTT 3.1.1 connect: %w", ctx.Err())
	}
	if err := tok.Error(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("bridge: MQTT 3.1.1 connect: %w", err)
	}
	if ct, ok := tok.(*mqtt.ConnectToken); ok {
		l.present = ct.SessionPresent()
	}
	return l, nil
}

func (l *v3link) markEnd() { l.endOnce.Do(func() { close(l.end) }) }

func (l *v3link) version() int          { return 4 }
func (l *v3link) sessionPresent() bool  { return l.present }
func (l *v3link) done() <-chan struct{} { return l.end }
func (l *v3link) takenOver() bool       { return false } // 3.1.1 does not say

func (l *v3link) publish(ctx context.Context, m *outMsg, done func(error)) error {
	select {
	case <-l.end:
		return errLinkLost
	default:
	}
	tok := l.c.Publish(m.topic, m.qos, m.retain, m.payload)
	l.waiters.Add(1)
	go func() {
		defer l.waiters.Done()
		select {
		case <-tok.Done():
		case <-l.end:
			select {
			case <-tok.Done():
			default:
				done(errLinkLost)
				return
			}
		}
		if tok.Error() != nil {
			done(errLinkLost)
			return
		}
		done(nil)
	}()
	return nil
}

func (l *v3link) subscribe(ctx context.Context, subs []outSub) ([]byte, error) {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.filter] = s.qos
	}
	tok := l.c.SubscribeMultiple(filters, nil)
	if err := l.wait(ctx, tok); err != nil {
		return nil, fmt.Errorf("bridge: subscribe: %w", err)
	}
	codes := make([]byte, len(subs))
	st, ok := tok.(*mqtt.SubscribeToken)
	if !ok {
		return codes, nil
	}
	res := st.Result()
	for i, s := range subs {
		codes[i] = res[s.filter]
	}
	return codes, nil
}

func (l *v3link) unsubscribe(ctx context.Context, filters []string) error {
	if err := l.wait(ctx, l.c.Unsubscribe(filters...)); err != nil {
		return fmt.Errorf("bridge: unsubscribe: %w", err)
	}
	return nil
}

// wait waits for tok, the link's end or ctx.
func (l *v3link) wait(ctx context.Context, tok mqtt.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-l.end:
		return errLinkLost
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *v3link) close(withWill bool) {
	l.closing.Do(func() {
		if withWill {
			// 3.1.1 has no "disconnect with will": drop the connection so
			// that the broker publishes the will.
			l.closeNow()
		}
		l.c.Disconnect(250)
		l.closeNow()
		l.markEnd()
	})
	l.waiters.Wait()
}

func (l *v3link) closeNow() { _ = l.raw.Close() }
