package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport/serial"
)

// Modems played on the master side of a pty, for the end-to-end tests of
// serial links through the gateway (serial_e2e_test.go). The gateway's
// serial.Link opens the slave through a symlink, as it would open
// /dev/ttyUSB0, with go.bug.st/serial. Each modem speaks its kind's wire
// protocol: it answers the link's commands and transmit requests the way
// the hardware does, hands the MQTT-SN frames it "transmits" to the
// sensor at the destination address, and frames the sensors' uplinks.

// ptyDev is the modem end of a pty pair.
type ptyDev struct {
	t      *testing.T
	path   string
	master *os.File
	slave  *os.File
	chunks chan []byte
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	wmu    sync.Mutex
}

func newPtyDev(t *testing.T, name string) *ptyDev {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		t.Skipf("no pty available: %v", err)
	}
	fd := int(s.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN], tio.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	// A non-blocking master registered with the poller, so that Close
	// interrupts the reader.
	mfd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(mfd, true); err != nil {
		t.Fatal(err)
	}
	_ = m.Close()
	path := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(s.Name(), path); err != nil {
		t.Fatal(err)
	}
	d := &ptyDev{t: t, path: path, master: os.NewFile(uintptr(mfd), "ptmx"), slave: s,
		chunks: make(chan []byte, 1024), stop: make(chan struct{})}
	d.wg.Add(1)
	go d.readLoop()
	t.Cleanup(d.close)
	return d
}

func (d *ptyDev) readLoop() {
	defer d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, err := d.master.Read(buf)
		if n > 0 {
			select {
			case d.chunks <- append([]byte(nil), buf[:n]...):
			case <-d.stop:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (d *ptyDev) write(b []byte) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if _, err := d.master.Write(b); err != nil {
		select {
		case <-d.stop:
		default:
			d.t.Errorf("modem write: %v", err)
		}
	}
}

func (d *ptyDev) close() {
	d.once.Do(func() {
		close(d.stop)
		_ = d.master.Close()
		_ = d.slave.Close()
		d.wg.Wait()
	})
}

// upFrame is a sensor's MQTT-SN frame for the modem to "receive".
type upFrame struct {
	node string // the node's address bytes
	data []byte
}

// modemSim plays one serial radio of a kind on a ptyDev.
type modemSim struct {
	t     *testing.T
	kind  serial.Kind
	dev   *ptyDev
	netID uint8
	up    chan upFrame

	mu   sync.Mutex
	down map[string]chan []byte

	// failPublish makes an XBee answer that many transmit requests
	// carrying a PUBLISH with a failed Transmit Status (and not deliver
	// them).
	failPublish atomic.Int32
	failed      atomic.Int32
	carried     atomic.Int64 // downlinks delivered to sensors
	stop        chan struct{}
	wg          sync.WaitGroup

	listening bool // the modem goroutine's: an ASCII modem is in receive mode
	// forwarder makes a slip/cobs bridge an MQTT-SN forwarder: sensors
	// are wireless node IDs and frames travel encapsulated on the wire.
	forwarder bool
}

func startModem(t *testing.T, dev *ptyDev, kind serial.Kind, netID uint8, forwarder bool) *modemSim {
	m := &modemSim{t: t, kind: kind, dev: dev, netID: netID, up: make(chan upFrame, 64),
		down: make(map[string]chan []byte), stop: make(chan struct{}), forwarder: forwarder}
	m.listening = kind != serial.KindRN2483 && kind != serial.KindRAK
	m.wg.Add(1)
	go m.run()
	t.Cleanup(func() {
		close(m.stop)
		m.wg.Wait()
	})
	return m
}

func (m *modemSim) downlinks(node string) chan []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.down[node]
	if ch == nil {
		ch = make(chan []byte, 256)
		m.down[node] = ch
	}
	return ch
}

func (m *modemSim) deliver(node string, data []byte) {
	m.carried.Add(1)
	select {
	case m.downlinks(node) <- append([]byte(nil), data...):
	default:
		m.t.Errorf("modem: sensor %x not reading", node)
	}
}

func (m *modemSim) run() {
	defer m.wg.Done()
	var dec radios.FrameDecoder
	switch m.kind {
	case serial.KindXBee:
		dec = radios.NewXBeeDecoder(radios.APIMode2, 0)
	case serial.KindLoRaLink:
		dec = radios.NewLoRaLinkDecoder(0)
	case serial.KindSLIP:
		dec = radios.NewSLIPDecoder(0)
	case serial.KindCOBS:
		dec = radios.NewCOBSDecoder(0)
	default:
		dec = radios.NewLineDecoder(1024)
	}
	for {
		var up chan upFrame
		if m.listening {
			up = m.up
		}
		select {
		case <-m.stop:
			return
		case c := <-m.dev.chunks:
			dec.Feed(c, m.fromLink)
		case u := <-up:
			m.dev.write(m.frameUplink(u))
			if m.kind == serial.KindRN2483 {
				m.listening = false // the RN2483 leaves receive mode after radio_rx
			}
		}
	}
}

// fromLink handles one frame (or command line) the gateway's link wrote.
func (m *modemSim) fromLink(f []byte) {
	switch m.kind {
	case serial.KindXBee:
		req, err := radios.ParseXBeeTxRequest(f)
		if err != nil {
			m.t.Errorf("xbee modem: %v (% X)", err, f)
			return
		}
		st := radios.XBeeTxStatus{FrameID: req.FrameID, Dest16: 0x7D84}
		fail := len(req.Data) > 1 && req.Data[1] == 0x0C && m.failPublish.Add(-1) >= 0
		if fail {
			st.Delivery = radios.XBeeDeliveryRouteNotFound
			m.failed.Add(1)
		}
		if req.FrameID != 0 {
			raw, _ := radios.AppendXBeeFrame(nil, radios.APIMode2, st.AppendFrameData(nil))
			m.dev.write(raw)
		}
		if !fail && req.Dest64 != radios.XBeeBroadcast64 {
			var a [8]byte
			binary.BigEndian.PutUint64(a[:], req.Dest64)
			m.deliver(string(a[:]), req.Data)
		}
	case serial.KindLoRaLink:
		tx, err := radios.ParseLoRaLinkTx(f)
		if err != nil {
			m.t.Errorf("loralink modem: %v", err)
			return
		}
		ack, _ := radios.AppendLoRaLinkRx(nil, radios.LoRaLinkRx{Type: radios.LoRaLinkAck})
		m.dev.write(ack)
		if tx.Dest != radios.LoRaLinkBroadcast {
			m.deliver(string([]byte{tx.Dest}), tx.Payload)
		}
	case serial.KindSLIP, serial.KindCOBS:
		if !m.forwarder {
			m.deliver(string(serial.BridgeAddr().Bytes()), f)
			return
		}
		var p sn.Packet
		enc, err := sn.Decapsulate(f, &p)
		if err != nil {
			m.t.Errorf("bridge: % X: %v", f, err)
			return
		}
		m.deliver(string(enc.NodeID), enc.Message)
	case serial.KindRN2483:
		m.rn2483(string(f))
	case serial.KindRAK:
		m.rak(string(f))
	}
}

func (m *modemSim) say(lines ...string) {
	for _, l := range lines {
		m.dev.write([]byte(l + "\r\n"))
	}
}

// rn2483 answers one RN2483 command.
func (m *modemSim) rn2483(cmd string) {
	switch {
	case cmd == "mac pause":
		m.say("4294967245")
	case cmd == "radio rx 0":
		m.say("ok")
		m.listening = true
	case cmd == "radio rxstop":
		if m.listening {
			m.say("ok")
		} else {
			m.say("invalid_param") // reception had already ended
		}
		m.listening = false
	case cmd == "radio get snr":
		m.say("7")
	case cmd == "radio get rssi":
		m.say("-61")
	case strings.HasPrefix(cmd, "radio set "):
		m.say("ok")
	case strings.HasPrefix(cmd, "radio tx "):
		m.say("ok")
		m.transmitted(strings.TrimPrefix(cmd, "radio tx "))
		m.say("radio_tx_ok")
	default:
		m.say("invalid_param")
	}
}

// rak answers one RAK RUI3 command.
func (m *modemSim) rak(cmd string) {
	switch {
	case cmd == "AT+PRECV=65534":
		m.say("OK")
		m.listening = true
	case cmd == "AT+PRECV=0":
		m.say("OK")
		m.listening = false
	case cmd == "AT+NWM=0", strings.HasPrefix(cmd, "AT+P2P="):
		m.say("OK")
	case strings.HasPrefix(cmd, "AT+PSEND="):
		m.say("OK")
		m.transmitted(strings.TrimPrefix(cmd, "AT+PSEND="))
		m.say("+EVT:TXP2P DONE")
	default:
		m.say("AT_COMMAND_NOT_FOUND")
	}
}

// transmitted delivers the hex frame an ASCII modem was told to send.
func (m *modemSim) transmitted(hx string) {
	raw, err := hex.DecodeString(hx)
	if err != nil {
		m.t.Errorf("modem: tx %q: %v", hx, err)
		return
	}
	h, payload, err := radios.DecodeHeader(raw)
	if err != nil || !h.Downlink || h.Network != m.netID {
		m.t.Errorf("modem: tx header %+v: %v", h, err)
		return
	}
	if h.Node != radios.NodeBroadcast {
		var a [2]byte
		binary.BigEndian.PutUint16(a[:], h.Node)
		m.deliver(string(a[:]), payload)
	}
}

// frameUplink encodes a sensor's frame as the modem reports a reception.
func (m *modemSim) frameUplink(u upFrame) []byte {
	node := []byte(u.node)
	if m.forwarder {
		enc := sn.Encapsulated{NodeID: node, Message: u.data}
		u.data, _ = enc.Append(nil)
	}
	switch m.kind {
	case serial.KindXBee:
		p := radios.XBeeRxPacket{Src64: binary.BigEndian.Uint64(node), Src16: 0x7D84, Options: radios.XBeeRxAcked, Data: u.data}
		raw, _ := radios.AppendXBeeFrame(nil, radios.APIMode2, p.AppendFrameData(nil))
		return raw
	case serial.KindLoRaLink:
		raw, _ := radios.AppendLoRaLinkRx(nil, radios.LoRaLinkRx{Src: node[0], RSSI: -0x7D, SNR: 0x11, Type: radios.LoRaLinkMQTTSN, Payload: u.data})
		return raw
	case serial.KindSLIP:
		return radios.AppendSLIP(nil, u.data)
	case serial.KindCOBS:
		return radios.AppendCOBS(nil, u.data)
	}
	f := radios.AppendHeader(nil, radios.Header{Network: m.netID, Node: binary.BigEndian.Uint16(node)})
	hx := strings.ToUpper(hex.EncodeToString(append(f, u.data...)))
	if m.kind == serial.KindRAK {
		return []byte("+EVT:RXP2P:-45:10:" + hx + "\r\n")
	}
	return []byte("radio_rx  " + hx + "\r\n")
}

// radioConn is a sensor's datagram conn through a modemSim, for sn/client.
type radioConn struct {
	m    *modemSim
	node string
	in   chan []byte
	done chan struct{}
	once sync.Once
}

func (m *modemSim) conn(node []byte) *radioConn {
	return &radioConn{m: m, node: string(node), in: m.downlinks(string(node)), done: make(chan struct{})}
}

func (c *radioConn) Read(p []byte) (int, error) {
	select {
	case f := <-c.in:
		return copy(p, f), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *radioConn) Write(p []byte) (int, error) {
	select {
	case c.m.up <- upFrame{node: c.node, data: append([]byte(nil), p...)}:
		return len(p), nil
	case <-c.done:
		return 0, net.ErrClosed
	}
}

func (c *radioConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

func (c *radioConn) LocalAddr() net.Addr              { return radioAddr(c.node) }
func (c *radioConn) RemoteAddr() net.Addr             { return radioAddr("gateway") }
func (c *radioConn) SetDeadline(time.Time) error      { return nil }
func (c *radioConn) SetReadDeadline(time.Time) error  { return nil }
func (c *radioConn) SetWriteDeadline(time.Time) error { return nil }

// radioAddr is the net.Addr of a node behind a modemSim.
type radioAddr string

func (a radioAddr) Network() string { return "radio" }
func (a radioAddr) String() string  { return hex.EncodeToString([]byte(a)) }
