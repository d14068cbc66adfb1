package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/sngate/sngate/sn/client"
)

// Helpers of the crash test: the server process, the MQTT-SN clients'
// conn, and the ledger of what was sent, acknowledged and received.

// server is one run of the gateway process.
type server struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *syncBuffer
	mqtt   string // host:port
	sn     *net.UDPAddr
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readyInfo is the part of serve's --ready-file the test uses.
type readyInfo struct {
	MQTT  []string `json:"mqtt"`
	SNUDP []string `json:"sn_udp"`
}

// start runs bin on dataDir with serve's flags and waits for its ready
// file. It returns an error if the process exits first.
func start(bin string, args []string, dataDir string) (*server, error) {
	ready := filepath.Join(filepath.Dir(dataDir), fmt.Sprintf("ready-%d.json", time.Now().UnixNano()))
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(ready)); err != nil {
		return nil, err
	}
	args = append(args, "--sn-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--data-dir", dataDir, "--metrics-listen", "", "--ready-file", ready)
	s := &server{cmd: exec.Command(bin, args...), exited: make(chan struct{}), stderr: &syncBuffer{}}
	s.cmd.Stderr = s.stderr
	s.cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "SNGATE_") })
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	for {
		if data, err := os.ReadFile(ready); err == nil {
			var info readyInfo
			if err := json.Unmarshal(data, &info); err != nil || len(info.MQTT) == 0 || len(info.SNUDP) == 0 {
				s.kill()
				return nil, fmt.Errorf("ready file %s: %q: %v", ready, data, err)
			}
			s.mqtt = strings.TrimPrefix(info.MQTT[0], "tcp://")
			s.sn, err = net.ResolveUDPAddr("udp", info.SNUDP[0])
			if err != nil {
				s.kill()
				return nil, err
			}
			return s, nil
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			s.kill()
			return nil, err
		case <-s.exited:
			return nil, fmt.Errorf("%s exited before ready: %v\n%s", filepath.Base(bin), s.cmd.ProcessState, s.stderr)
		}
	}
}

// kill sends SIGKILL and waits for the process to end.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// redirConn is the datagram conn of an MQTT-SN client: it keeps its local
// port across gateway restarts and sends to the current gateway address
// (serve picks a new port at each start). Unconnected, it also ignores
// ICMP errors from a dead gateway, as a radio would.
type redirConn struct {
	pc     *net.UDPConn
	target atomic.Pointer[net.UDPAddr]
}

func newRedirConn(t *testing.T) *redirConn {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return &redirConn{pc: pc}
}

func (c *redirConn) Read(b []byte) (int, error) {
	for {
		n, from, err := c.pc.ReadFromUDP(b)
		if err != nil {
			return n, err
		}
		if t := c.target.Load(); t != nil && from.Port == t.Port && from.IP.Equal(t.IP) {
			return n, nil
		}
	}
}

func (c *redirConn) Write(b []byte) (int, error) {
	t := c.target.Load()
	if t == nil {
		return 0, errors.New("no gateway")
	}
	return c.pc.WriteToUDP(b, t)
}

func (c *redirConn) Close() error                       { return c.pc.Close() }
func (c *redirConn) LocalAddr() net.Addr                { return c.pc.LocalAddr() }
func (c *redirConn) RemoteAddr() net.Addr               { return c.target.Load() }
func (c *redirConn) SetDeadline(t time.Time) error      { return c.pc.SetDeadline(t) }
func (c *redirConn) SetReadDeadline(t time.Time) error  { return c.pc.SetReadDeadline(t) }
func (c *redirConn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }

// snClient is an MQTT-SN client that lives across gateway restarts.
type snClient struct {
	*client.Client
	conn *redirConn
}

func newSNClient(t *testing.T, id string, onPublish func(client.Message)) *snClient {
	conn := newRedirConn(t)
	c := client.New(conn, client.Options{ClientID: id, KeepAlive: time.Hour, PingInterval: -1,
		RetryInterval: 500 * time.Millisecond, MaxRetries: 3, OnPublish: onPublish})
	t.Cleanup(func() { c.Close() })
	return &snClient{Client: c, conn: conn}
}

// delivery is one message received by a subscriber.
type delivery struct {
	id  uint16 // packet ID (MQTT only)
	dup bool
}

// ledger records what was published, acknowledged and received.
type ledger struct {
	mu     sync.Mutex
	qos    map[string]byte                  // every payload sent, with its QoS
	acked  map[string]bool                  // payloads whose publish was acknowledged
	got    map[string]map[string][]delivery // subscriber -> payload -> deliveries
	roundN int                              // acks in the current round
	killAt int                              // close kill when roundN reaches it
	kill   chan struct{}
	change chan struct{} // signalled (non-blocking) on each delivery
	// retainedRound is the round of the last acknowledged retained
	// message (-1: none).
	retainedRound int
}

func newLedger() *ledger {
	return &ledger{qos: map[string]byte{}, acked: map[string]bool{}, got: map[string]map[string][]delivery{},
		change: make(chan struct{}, 1), retainedRound: -1}
}

func (l *ledger) sent(p string, qos byte) {
	l.mu.Lock()
	l.qos[p] = qos
	l.mu.Unlock()
}

func (l *ledger) ack(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[p] = true
	l.roundN++
	if l.roundN == l.killAt {
		close(l.kill)
	}
}

// newRound resets the round's ack count; the kill channel closes after
// killAt acks.
func (l *ledger) newRound(killAt int) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roundN, l.killAt, l.kill = 0, killAt, make(chan struct{})
	if killAt == 0 {
		close(l.kill)
	}
	return l.kill
}

func (l *ledger) received(sub, p string, d delivery) {
	l.mu.Lock()
	if l.got[sub] == nil {
		l.got[sub] = map[string][]delivery{}
	}
	l.got[sub][p] = append(l.got[sub][p], d)
	l.mu.Unlock()
	select {
	case l.change <- struct{}{}:
	default:
	}
}

// missing returns the acked payloads sub has not received.
func (l *ledger) missing(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for p := range l.acked {
		if len(l.got[sub][p]) == 0 {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// qos2Dups returns the QoS 2 payloads sub received more than once. With
// strict false (a client that does not remember the packet IDs it has
// PUBRECed, such as paho), a resend with Dup and the same packet ID is
// the receiver's to discard and does not count.
func (l *ledger) qos2Dups(sub string, strict bool) (dups []string, qos1Dups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for p, ds := range l.got[sub] {
		if len(ds) < 2 {
			continue
		}
		if l.qos[p] != 2 {
			qos1Dups++
			continue
		}
		if strict {
			dups = append(dups, p)
			continue
		}
		for _, d := range ds[1:] {
			if !d.dup || d.id != ds[0].id {
				dups = append(dups, fmt.Sprintf("%s %+v", p, ds))
				break
			}
		}
	}
	return dups, qos1Dups
}
