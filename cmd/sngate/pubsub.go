package main

// sngate pub and sngate sub: MQTT-SN clients in the style of mqtt-sn-pub,
// mqtt-sn-sub and mosquitto_pub, built on sn/client.

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/sn/client"
	"github.com/sngate/sngate/transport/dtls"
)

// maxMessageFile bounds a -f file: the largest MQTT-SN frame.
const maxMessageFile = sn.MaxLength

// clientFlags are the connection flags pub and sub share.
type clientFlags struct {
	host      string
	port      int
	clientID  string
	keepAlive int
	noClean   bool
	retry     time.Duration
	retries   int

	useDTLS     bool
	pskIdentity string
	pskHex      string
	caFile      string
	certFile    string
	keyFile     string

	serialDev string
	radio     string
	baud      int
	radioAddr string
}

func (f *clientFlags) register(fs *pflag.FlagSet, defaultKeepAlive int) {
	fs.StringVarP(&f.host, "host", "h", "127.0.0.1", "gateway host")
	fs.IntVarP(&f.port, "port", "p", 1884, "gateway port (5684 with --dtls unless given)")
	fs.StringVarP(&f.clientID, "id", "i", "", "client ID (default sngate-pub-PID / sngate-sub-PID)")
	fs.IntVarP(&f.keepAlive, "keepalive", "k", defaultKeepAlive, "keep-alive in seconds (0 disables supervision)")
	fs.BoolVarP(&f.noClean, "no-clean", "c", false, "keep the session: CONNECT with CleanSession off")
	fs.DurationVar(&f.retry, "retry", 3*time.Second, "wait this long for an answer before resending (T_RETRY)")
	fs.IntVar(&f.retries, "retries", 3, "resends before giving up (N_RETRY)")
	fs.BoolVar(&f.useDTLS, "dtls", false, "connect over DTLS")
	fs.StringVar(&f.pskIdentity, "psk-identity", "", "DTLS PSK identity")
	fs.StringVar(&f.pskHex, "psk", "", "DTLS PSK, in hex")
	fs.StringVar(&f.caFile, "cafile", "", "DTLS: CA certificates (PEM) the gateway certificate must chain to")
	fs.StringVar(&f.certFile, "cert", "", "DTLS: client certificate (PEM)")
	fs.StringVar(&f.keyFile, "key", "", "DTLS: client key (PEM)")
	fs.StringVar(&f.serialDev, "serial", "", "reach the gateway through a radio modem or bridge on this serial device")
	fs.StringVar(&f.radio, "radio", "", "with --serial: slip, cobs, xbee or loralink")
	fs.IntVar(&f.baud, "baud", 0, "with --serial: line speed (default per radio kind)")
	fs.StringVar(&f.radioAddr, "radio-addr", "", "with --serial: the gateway's radio address (xbee: 64-bit hex, default 0 = coordinator; loralink: node number)")
}

// check validates the connection flags.
func (f *clientFlags) check(fs *pflag.FlagSet) error {
	if f.port < 1 || f.port > 65535 {
		return usagef("-p %d is outside 1..65535", f.port)
	}
	if f.keepAlive < 0 || f.keepAlive > 65535 {
		return usagef("-k %d is outside 0..65535 seconds", f.keepAlive)
	}
	if len(f.clientID) > 65535 {
		return usagef("-i: client ID too long")
	}
	if f.retry <= 0 || f.retries < 0 {
		return usagef("--retry must be positive and --retries not negative")
	}
	if f.useDTLS && f.serialDev != "" {
		return usagef("--dtls and --serial exclude each other")
	}
	if f.useDTLS {
		if (f.pskIdentity == "") != (f.pskHex == "") {
			return usagef("--psk-identity and --psk go together")
		}
		if f.pskIdentity == "" && f.caFile == "" {
			return usagef("--dtls needs --psk-identity and --psk, or --cafile")
		}
		if (f.certFile == "") != (f.keyFile == "") {
			return usagef("--cert and --key go together")
		}
		if !fs.Changed("port") {
			f.port = 5684
		}
	} else if f.pskIdentity != "" || f.pskHex != "" || f.caFile != "" || f.certFile != "" {
		return usagef("--psk-identity, --psk, --cafile, --cert and --key need --dtls")
	}
	if f.serialDev != "" && f.radio == "" {
		return usagef("--serial needs --radio (slip, cobs, xbee or loralink)")
	}
	if f.serialDev == "" && (f.radio != "" || f.radioAddr != "" || f.baud != 0) {
		return usagef("--radio, --radio-addr and --baud need --serial")
	}
	return nil
}

// options returns the client options for these flags.
func (f *clientFlags) options(kind string) client.Options {
	id := f.clientID
	if id == "" {
		id = "sngate-" + kind + "-" + strconv.Itoa(os.Getpid())
	}
	ka := time.Duration(f.keepAlive) * time.Second
	if f.keepAlive == 0 {
		ka = -1 // sends 0: no supervision
	}
	retries := f.retries
	if retries == 0 {
		retries = -1 // the client's "none"
	}
	return client.Options{
		ClientID:      id,
		KeepAlive:     ka,
		CleanSession:  !f.noClean,
		RetryInterval: f.retry,
		MaxRetries:    retries,
	}
}

// dial opens the datagram conn to the gateway (UDP, DTLS or a radio).
func (f *clientFlags) dial(ctx context.Context) (net.Conn, error) {
	addr := net.JoinHostPort(f.host, strconv.Itoa(f.port))
	switch {
	case f.useDTLS:
		cc := dtls.ClientConfig{
			PSKIdentity:  f.pskIdentity,
			CAFile:       f.caFile,
			CertFile:     f.certFile,
			KeyFile:      f.keyFile,
			ConnectionID: true,
		}
		if f.pskHex != "" {
			k, err := decodeHexKey(f.pskHex)
			if err != nil {
				return nil, usagef("--psk: %w", err)
			}
			cc.PSK = k
		}
		hctx, cancel := context.WithTimeout(ctx, f.retry*time.Duration(f.retries+1))
		defer cancel()
		conn, err := dtls.Dial(hctx, addr, cc)
		if err != nil {
			return nil, err
		}
		return conn, nil
	case f.serialDev != "":
		return dialSerial(ctx, f.serialDev, f.radio, f.baud, f.radioAddr, f.retry*time.Duration(f.retries+1))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// explain turns the commonest network failures into a plain sentence,
// keeping the cause for errors.Is.
func (f *clientFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	where := net.JoinHostPort(f.host, strconv.Itoa(f.port))
	if f.serialDev != "" {
		where = f.serialDev
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("no MQTT-SN gateway at %s (port unreachable): %w", where, err)
	case errors.Is(err, client.ErrNoResponse):
		return fmt.Errorf("no answer from %s: %w", where, err)
	}
	return err
}

// parseQoS reads -q: -1, 0, 1 or 2.
func parseQoS(q int) (sn.QoS, error) {
	switch q {
	case -1:
		return sn.QoSMinus1, nil
	case 0, 1, 2:
		return sn.QoS(q), nil
	}
	return 0, usagef("-q %d: want -1, 0, 1 or 2", q)
}

// topicFlags choose the topic: a name, a predefined ID or a short name.
type topicFlags struct {
	names      []string
	predefined []int
	short      []string
}

func (t *topicFlags) refs(multi bool) ([]client.TopicRef, error) {
	var refs []client.TopicRef
	for _, n := range t.names {
		if n == "" {
			return nil, usagef("-t: empty topic")
		}
		refs = append(refs, client.Topic(n))
	}
	for _, id := range t.predefined {
		if id < 1 || id > 65534 {
			return nil, usagef("-T %d: want a predefined topic ID in 1..65534", id)
		}
		refs = append(refs, client.Predefined(uint16(id)))
	}
	for _, s := range t.short {
		if len(s) != 2 {
			return nil, usagef("-s %q: a short topic has exactly 2 characters", s)
		}
		refs = append(refs, client.Short(s))
	}
	switch {
	case len(refs) == 0:
		return nil, usagef("give a topic: -t NAME, -T ID or -s XY")
	case len(refs) > 1 && !multi:
		return nil, usagef("give exactly one of -t, -T and -s")
	}
	return refs, nil
}

func (a *app) newPubCmd() *cobra.Command {
	var (
		cf      clientFlags
		tf      topicFlags
		message string
		file    string
		null    bool
		lines   bool
		qos     int
		retain  bool
	)
	cmd := &cobra.Command{
		Use:   "pub -t TOPIC|-T ID|-s XY (-m MSG|-f FILE|-n|-l) [flags]",
		Short: "Publish MQTT-SN messages (like mqtt-sn-pub)",
		Long: `Connect to an MQTT-SN gateway, publish, disconnect.

  sngate pub -t sensors/t1 -m 21.5               # QoS 0, topic registered first
  sngate pub -T 1 -q 1 -m on                     # predefined topic ID 1
  sngate pub -s ab -q -1 -m hi                   # QoS -1: no CONNECT at all
  sngate pub --dtls --psk-identity s1 --psk 0011.. -t a/b -m x
  sngate pub --serial /dev/ttyUSB0 --radio slip -t a/b -m x

QoS -1 sends one PUBLISH without connecting; the gateway must allow it
(sn.qos_minus1, or an sn.clients entry). A -t name at QoS -1 uses the
"long topic name" form. Exit status: 0 published (acknowledged at QoS 1
and 2), 1 network or gateway failure, 2 usage error.`,
		Args: cobra.NoArgs,
		RunE: a.command(func(cmd *cobra.Command, _ []string) error {
			if err := cf.check(cmd.Flags()); err != nil {
				return err
			}
			q, err := parseQoS(qos)
			if err != nil {
				return err
			}
			refs, err := tf.refs(false)
			if err != nil {
				return err
			}
			payloads, err := a.pubPayloads(message, file, null, lines, cmd.Flags().Changed("message"))
			if err != nil {
				return err
			}
			return cf.explain(a.publish(cmd.Context(), &cf, refs[0], q, retain, payloads))
		}),
	}
	fs := cmd.Flags()
	cf.register(fs, 10)
	fs.StringArrayVarP(&tf.names, "topic", "t", nil, "topic name")
	fs.IntSliceVarP(&tf.predefined, "predefined", "T", nil, "predefined topic ID")
	fs.StringArrayVarP(&tf.short, "short", "s", nil, "short topic name (2 characters)")
	fs.StringVarP(&message, "message", "m", "", "message payload")
	fs.StringVarP(&file, "file", "f", "", "send the contents of a file as the message")
	fs.BoolVarP(&null, "null", "n", false, "send an empty message (clears a retained message with -r)")
	fs.BoolVarP(&lines, "stdin-lines", "l", false, "send each line of standard input as a message")
	fs.IntVarP(&qos, "qos", "q", 0, "QoS: -1, 0, 1 or 2")
	fs.BoolVarP(&retain, "retain", "r", false, "retain the message")
	return cmd
}

// pubPayloads returns the messages to send, or nil with lines (read
// while publishing).
func (a *app) pubPayloads(message, file string, null, lines, haveMsg bool) ([][]byte, error) {
	n := 0
	for _, set := range []bool{haveMsg, file != "", null, lines} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, usagef("give exactly one of -m, -f, -n and -l")
	}
	switch {
	case haveMsg:
		return [][]byte{[]byte(message)}, nil
	case null:
		return [][]byte{{}}, nil
	case lines:
		return nil, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, usagef("-f: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxMessageFile+1))
	if err != nil {
		return nil, fmt.Errorf("-f %s: %w", file, err)
	}
	if len(data) > maxMessageFile {
		return nil, usagef("-f %s: larger than an MQTT-SN frame (%d bytes)", file, maxMessageFile)
	}
	return [][]byte{data}, nil
}

// publish connects (except at QoS -1), publishes and disconnects.
func (a *app) publish(ctx context.Context, cf *clientFlags, topic client.TopicRef, q sn.QoS, retain bool, payloads [][]byte) error {
	conn, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	c := client.New(conn, cf.options("pub"))
	defer c.Close()
	if q != sn.QoSMinus1 {
		if err := c.Connect(ctx); err != nil {
			return err
		}
	}
	send := func(p []byte) error { return c.Publish(ctx, topic, q, retain, p) }
	if payloads == nil {
		sc := bufio.NewScanner(a.stdin)
		sc.Buffer(make([]byte, 0, 4096), maxMessageFile)
		for sc.Scan() {
			if err := send(sc.Bytes()); err != nil {
				return err
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read stdin: %w", err)
		}
	}
	for _, p := range payloads {
		if err := send(p); err != nil {
			return err
		}
	}
	if q != sn.QoSMinus1 {
		if err := c.Disconnect(ctx); err != nil {
			return err
		}
	}
	return nil
}

// subOptions are the flags of sngate sub that pub lacks.
type subOptions struct {
	qos     int
	count   int
	verbose bool
	sleep   time.Duration
	hexOut  bool
}

func (a *app) newSubCmd() *cobra.Command {
	var (
		cf clientFlags
		tf topicFlags
		o  subOptions
	)
	cmd := &cobra.Command{
		Use:   "sub -t FILTER|-T ID|-s XY [flags]",
		Short: "Subscribe and print MQTT-SN messages (like mqtt-sn-sub)",
		Long: `Connect to an MQTT-SN gateway, subscribe, and print each message's payload
(with -v, the topic first) until -C messages arrived or SIGINT/SIGTERM.
-t, -T and -s may be repeated.

--sleep DURATION makes it a sleeping client: after subscribing it tells
the gateway it sleeps for DURATION (DISCONNECT with a duration), wakes
every DURATION with PINGREQ, prints what the gateway buffered meanwhile,
and sleeps again.

Exit status: 0 done (count reached or interrupted), 1 network or gateway
failure, 2 usage error.`,
		Args: cobra.NoArgs,
		RunE: a.command(func(cmd *cobra.Command, _ []string) error {
			if err := cf.check(cmd.Flags()); err != nil {
				return err
			}
			q, err := parseQoS(o.qos)
			if err != nil {
				return err
			}
			if q == sn.QoSMinus1 {
				return usagef("-q -1 is for publishing only")
			}
			refs, err := tf.refs(true)
			if err != nil {
				return err
			}
			if o.count < 0 {
				return usagef("-C %d: must not be negative", o.count)
			}
			if o.sleep < 0 || o.sleep > 65535*time.Second {
				return usagef("--sleep %s: outside 0..18h12m15s", o.sleep)
			}
			return cf.explain(a.subscribe(cmd.Context(), &cf, refs, q, o))
		}),
	}
	fs := cmd.Flags()
	cf.register(fs, 60)
	fs.StringArrayVarP(&tf.names, "topic", "t", nil, "topic filter (repeatable)")
	fs.IntSliceVarP(&tf.predefined, "predefined", "T", nil, "predefined topic ID (repeatable)")
	fs.StringArrayVarP(&tf.short, "short", "s", nil, "short topic name (repeatable)")
	fs.IntVarP(&o.qos, "qos", "q", 0, "QoS: 0, 1 or 2")
	fs.IntVarP(&o.count, "count", "C", 0, "exit after this many messages (0 = run until interrupted)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print the topic before each payload")
	fs.DurationVar(&o.sleep, "sleep", 0, "be a sleeping client: sleep this long, wake, print, repeat")
	fs.BoolVar(&o.hexOut, "hex", false, "print payloads in hex")
	return cmd
}

// printer prints received messages and counts them.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	o     subOptions
	n     int
	done  chan struct{}
	once  sync.Once
	write error
}

func (p *printer) onPublish(m client.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.count > 0 && p.n >= p.o.count {
		return
	}
	p.n++
	payload := string(m.Payload)
	if p.o.hexOut {
		payload = hex.EncodeToString(m.Payload)
	}
	var err error
	if p.o.verbose {
		_, err = fmt.Fprintf(p.w, "%s %s\n", topicName(m), payload)
	} else {
		_, err = fmt.Fprintln(p.w, payload)
	}
	if err != nil && p.write == nil {
		p.write = err
		p.once.Do(func() { close(p.done) })
	}
	if p.o.count > 0 && p.n >= p.o.count {
		p.once.Do(func() { close(p.done) })
	}
}

// topicName renders the topic of a received message.
func topicName(m client.Message) string {
	switch {
	case m.Topic != "":
		return m.Topic
	case m.TopicIDType == sn.TopicIDPredefined:
		return "predefined:" + strconv.Itoa(int(m.TopicID))
	}
	return "topic-id:" + strconv.Itoa(int(m.TopicID))
}

// watchConn notices a DISCONNECT the gateway sends on its own (when it
// stops, or drops the session), which the client library only records in
// its state. expect is set while the client itself disconnects or sleeps,
// when a DISCONNECT is the normal answer.
type watchConn struct {
	net.Conn
	expect atomic.Bool
	lost   chan struct{}
	once   sync.Once
	pkt    sn.Packet
}

func newWatchConn(c net.Conn) *watchConn { return &watchConn{Conn: c, lost: make(chan struct{})} }

// Read passes datagrams through, watching for DISCONNECT.
func (w *watchConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if err == nil && !w.expect.Load() && sn.Decode(p[:n], &w.pkt) == nil && w.pkt.Type == sn.TypeDisconnect {
		w.once.Do(func() { close(w.lost) })
	}
	return n, err
}

// errGatewayDisconnected reports an unsolicited DISCONNECT.
var errGatewayDisconnected = errors.New("the gateway sent DISCONNECT (it is stopping, or it ended the session)")

// subscribe runs sngate sub.
func (a *app) subscribe(ctx context.Context, cf *clientFlags, refs []client.TopicRef, q sn.QoS, o subOptions) error {
	raw, err := cf.dial(ctx)
	if err != nil {
		return err
	}
	conn := newWatchConn(raw)
	p := &printer{w: a.stdout, o: o, done: make(chan struct{})}
	opts := cf.options("sub")
	opts.OnPublish = p.onPublish
	c := client.New(conn, opts)
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		return err
	}
	for _, r := range refs {
		if _, _, err := c.Subscribe(ctx, r, q); err != nil {
			return err
		}
	}
	fmt.Fprintf(a.stderr, "sngate sub: subscribed as %q\n", opts.ClientID)
	if o.sleep > 0 {
		return a.sleepLoop(ctx, c, conn, p, o.sleep)
	}
	select {
	case <-ctx.Done():
	case <-p.done:
	case <-c.Done():
		return fmt.Errorf("connection ended: %w", c.Err())
	case <-conn.lost:
		return errGatewayDisconnected
	}
	if p.write != nil {
		return fmt.Errorf("write: %w", p.write)
	}
	return a.endSession(c, conn)
}

// sleepLoop sleeps, wakes and prints until done.
func (a *app) sleepLoop(ctx context.Context, c *client.Client, conn *watchConn, p *printer, d time.Duration) error {
	for {
		conn.expect.Store(true)
		err := c.Sleep(ctx, d)
		conn.expect.Store(false)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "sngate sub: asleep for %s\n", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return a.endSession(c, conn)
		case <-p.done:
			t.Stop()
			return a.endSession(c, conn)
		case <-c.Done():
			t.Stop()
			return fmt.Errorf("connection ended: %w", c.Err())
		case <-conn.lost:
			t.Stop()
			return errGatewayDisconnected
		case <-t.C:
		}
		n, err := c.Wake(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "sngate sub: woke, %d buffered message(s)\n", n)
		select {
		case <-p.done:
			return a.endSession(c, conn)
		default:
		}
	}
}

// endSession sends DISCONNECT with a fresh, bounded context (the command's
// context may be cancelled already).
func (a *app) endSession(c *client.Client, conn *watchConn) error {
	conn.expect.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, client.ErrClosed) {
		return err
	}
	return nil
}
