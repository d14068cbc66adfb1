package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sngate/sngate/broker/packets"
)

// mqttConn is a minimal MQTT 3.1.1 client connection: the measuring side
// of the benchmark, lean so it is not the bottleneck.
type mqttConn struct {
	nc   net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	bw   *bufio.Writer
	body []byte
}

// dialMQTT connects and completes the CONNECT/CONNACK exchange.
func dialMQTT(ctx context.Context, addr, id string) (*mqttConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("bench: MQTT dial %s: %w", addr, err)
	}
	m := &mqttConn{nc: nc, br: bufio.NewReaderSize(nc, 256<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	c := packets.Connect{Version: packets.V311, CleanStart: true, ClientID: id}
	b, err := c.Append(nil, packets.V311)
	if err == nil {
		err = m.write(b, true)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: MQTT CONNECT to %s: %w", addr, err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, body, err := m.read()
	if err == nil && h.Type != packets.CONNACK {
		err = fmt.Errorf("got %s, want CONNACK", packets.TypeName(h.Type))
	}
	var ca packets.Connack
	if err == nil {
		err = ca.Decode(body, packets.V311)
	}
	if err == nil && ca.ReasonCode != 0 {
		err = fmt.Errorf("CONNACK return code %d", ca.ReasonCode)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("bench: MQTT connect to %s: %w", addr, err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return m, nil
}

// write appends b to the write buffer, flushing when asked.
func (m *mqttConn) write(b []byte, flush bool) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if _, err := m.bw.Write(b); err != nil {
		return err
	}
	if flush {
		return m.bw.Flush()
	}
	return nil
}

func (m *mqttConn) flush() error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	return m.bw.Flush()
}

// read reads one packet; the body is valid until the next read.
func (m *mqttConn) read() (packets.FixedHeader, []byte, error) {
	h, err := packets.ReadFixedHeader(m.br, 1<<20)
	if err != nil {
		return h, nil, err
	}
	if cap(m.body) < h.Remaining {
		m.body = make([]byte, h.Remaining)
	}
	body := m.body[:h.Remaining]
	if _, err := io.ReadFull(m.br, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

// subscribe sends SUBSCRIBE and waits for its SUBACK.
func (m *mqttConn) subscribe(filter string, qos byte) error {
	s := packets.Subscribe{PacketID: 1, Filters: []packets.SubOption{{Filter: filter, QoS: qos}}}
	b, err := s.Append(nil, packets.V311)
	if err == nil {
		err = m.write(b, true)
	}
	if err != nil {
		return fmt.Errorf("bench: MQTT SUBSCRIBE: %w", err)
	}
	_ = m.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer m.nc.SetReadDeadline(time.Time{})
	for {
		h, body, err := m.read()
		if err != nil {
			return fmt.Errorf("bench: MQTT SUBACK: %w", err)
		}
		if h.Type != packets.SUBACK {
			continue
		}
		var sa packets.Suback
		if err := sa.Decode(body, packets.V311); err != nil {
			return fmt.Errorf("bench: MQTT SUBACK: %w", err)
		}
		if len(sa.ReasonCodes) != 1 || sa.ReasonCodes[0] >= 0x80 {
			return fmt.Errorf("bench: MQTT subscription to %q refused", filter)
		}
		return nil
	}
}

// parsePublish splits an MQTT 3.1.1 PUBLISH body.
func parsePublish(h packets.FixedHeader, body []byte) (qos byte, id uint16, payload []byte, ok bool) {
	qos = h.Flags >> 1 & 3
	if len(body) < 2 {
		return 0, 0, nil, false
	}
	off := 2 + int(binary.BigEndian.Uint16(body))
	if qos > 0 {
		off += 2
	}
	if off > len(body) {
		return 0, 0, nil, false
	}
	if qos > 0 {
		id = binary.BigEndian.Uint16(body[off-2:])
	}
	return qos, id, body[off:], true
}

// subscriber counts and times the messages the publish scenario's
// clients send, as they arrive at an MQTT client of the broker.
type subscriber struct {
	m         *mqttConn
	r         *run
	lat       *hist
	seen      []seqSet
	errs      map[string]uint64
	delivered atomic.Uint64
	dups      atomic.Uint64
	lastAt    atomic.Int64
	closing   atomic.Bool
	done      chan struct{}
	err       error
}

func newSubscriber(ctx context.Context, r *run, filter string, qos byte) (*subscriber, error) {
	m, err := dialMQTT(ctx, r.cfg.MQTT, clientIDString(r.id, "sub"))
	if err != nil {
		return nil, err
	}
	if err := m.subscribe(filter, qos); err != nil {
		m.nc.Close()
		return nil, err
	}
	s := &subscriber{m: m, r: r, lat: newHist(), seen: make([]seqSet, r.cfg.Clients),
		errs: make(map[string]uint64), done: make(chan struct{})}
	go s.loop()
	return s, nil
}

func clientIDString(run uint32, role string) string {
	return string(clientID([]byte(role+"-"), run, 0))
}

func (s *subscriber) loop() {
	defer close(s.done)
	var ack []byte
	for {
		h, body, err := s.m.read()
		if err != nil {
			if !s.closing.Load() {
				s.err = fmt.Errorf("bench: MQTT subscriber: %w", err)
			}
			return
		}
		switch h.Type {
		case packets.PUBLISH:
			qos, id, payload, ok := parsePublish(h, body)
			if !ok {
				s.errs["MQTT: malformed PUBLISH"]++
				break
			}
			switch qos {
			case 1:
				ack = packets.AppendAck(ack, packets.PUBACK, id, 0, packets.V311)
			case 2:
				ack = packets.AppendAck(ack, packets.PUBREC, id, 0, packets.V311)
			}
			s.record(payload)
		case packets.PUBREL:
			if len(body) >= 2 {
				ack = packets.AppendAck(ack, packets.PUBCOMP, binary.BigEndian.Uint16(body), 0, packets.V311)
			}
		}
		if len(ack) > 0 && (s.m.br.Buffered() == 0 || len(ack) > 32<<10) {
			if err := s.m.write(ack, true); err != nil && !s.closing.Load() {
				s.errs["MQTT: write error"]++
			}
			ack = ack[:0]
		}
	}
}

func (s *subscriber) record(p []byte) {
	now := s.r.now()
	at, client, seq, ok := unstamp(p)
	if !ok || int(client) >= len(s.seen) {
		s.errs["MQTT: foreign message"]++
		return
	}
	if !s.seen[client].add(seq) {
		s.dups.Add(1)
		return
	}
	s.lat.add(now - at)
	s.lastAt.Store(now)
	s.delivered.Add(1)
}

// stop closes the connection and waits for the reader.
func (s *subscriber) stop() {
	s.closing.Store(true)
	_ = s.m.nc.Close()
	<-s.done
}

// publisher publishes over MQTT for the subscribe and sleep scenarios.
// QoS 1 and 2 keep a window of unacknowledged messages.
type publisher struct {
	m       *mqttConn
	qos     byte
	sem     chan struct{}
	acked   atomic.Uint64
	pid     uint16
	buf     []byte
	closing atomic.Bool
	done    chan struct{}
	err     error
}

// pubWindow bounds the publisher's unacknowledged QoS 1/2 messages.
const pubWindow = 256

func newPublisher(ctx context.Context, r *run, qos byte) (*publisher, error) {
	m, err := dialMQTT(ctx, r.cfg.MQTT, clientIDString(r.id, "pub"))
	if err != nil {
		return nil, err
	}
	p := &publisher{m: m, qos: qos, sem: make(chan struct{}, pubWindow), done: make(chan struct{})}
	go p.readLoop()
	return p, nil
}

func (p *publisher) readLoop() {
	defer close(p.done)
	var out []byte
	for {
		h, body, err := p.m.read()
		if err != nil {
			if !p.closing.Load() {
				p.err = fmt.Errorf("bench: MQTT publisher: %w", err)
			}
			return
		}
		switch h.Type {
		case packets.PUBACK, packets.PUBCOMP:
			p.acked.Add(1)
			select {
			case <-p.sem:
			default:
			}
		case packets.PUBREC:
			if len(body) >= 2 {
				out = packets.AppendAck(out[:0], packets.PUBREL, binary.BigEndian.Uint16(body), 0, packets.V311)
				if err := p.m.write(out, true); err != nil {
					return
				}
			}
		}
	}
}

// publish queues one message; QoS 1/2 wait for a window slot. The caller
// flushes.
func (p *publisher) publish(ctx context.Context, topic string, payload []byte) error {
	pk := packets.Publish{Topic: topic, QoS: p.qos, Payload: payload}
	if p.qos > 0 {
		select {
		case p.sem <- struct{}{}:
		default:
			if err := p.m.flush(); err != nil {
				return fmt.Errorf("bench: MQTT publish: %w", err)
			}
			select {
			case p.sem <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			case <-p.done:
				return errors.New("bench: MQTT publisher connection closed")
			}
		}
		p.pid++
		if p.pid == 0 {
			p.pid = 1
		}
		pk.PacketID = p.pid
	}
	var err error
	p.buf, err = pk.Append(p.buf[:0], packets.V311)
	if err == nil {
		err = p.m.write(p.buf, false)
	}
	if err != nil {
		return fmt.Errorf("bench: MQTT publish: %w", err)
	}
	return nil
}

// waitAcked waits until n messages are acknowledged (QoS 1/2).
func (p *publisher) waitAcked(ctx context.Context, n uint64, limit time.Duration) error {
	if err := p.m.flush(); err != nil {
		return fmt.Errorf("bench: MQTT publish: %w", err)
	}
	if p.qos == 0 {
		return nil
	}
	deadline := time.Now().Add(limit)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for p.acked.Load() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return errors.New("bench: MQTT publisher connection closed")
		case <-t.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d of %d MQTT publishes acknowledged after %v", p.acked.Load(), n, limit)
		}
	}
	return nil
}

func (p *publisher) stop() {
	p.closing.Store(true)
	_ = p.m.write([]byte{packets.DISCONNECT << 4, 0}, true)
	_ = p.m.nc.Close()
	<-p.done
}
