package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sngate/sngate/sn"
)

// vectorsDir holds the shared wire captures, beside the repository.
const vectorsDir = "../../../shared/vectors"

// vectorFrame is one MQTT-SN line of a NAME.frames.txt file.
type vectorFrame struct {
	num      int
	srcPort  string
	dstPort  string
	length   int
	payload  []byte
	decoded  string
	hexField string
}

var portRe = regexp.MustCompile(`:(\d+)(?:->|$)`)

func readVectorFrames(t *testing.T, path string) []vectorFrame {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []vectorFrame
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 7 || cols[2] != "MQTT-SN" {
			continue
		}
		num, _ := strconv.Atoi(cols[1])
		n, _ := strconv.Atoi(cols[4])
		payload, err := hex.DecodeString(cols[5])
		if err != nil {
			t.Fatalf("%s: bad hex: %v", path, err)
		}
		src, dst, _ := strings.Cut(cols[3], "->")
		ports := func(s string) string {
			// "client:30043", "gw:10000", "mcast:225.1.1.1:1883"
			i := strings.LastIndexByte(s, ':')
			return s[i+1:]
		}
		out = append(out, vectorFrame{num: num, srcPort: ports(src), dstPort: ports(dst), length: n,
			payload: payload, decoded: cols[6], hexField: cols[5]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var dumpLineRe = regexp.MustCompile(`^\s*(\d+)\s+([0-9.]+) (\S+) → (\S+) MQTT-SN (\d+) (.*)$`)

// Every MQTT-SN frame of every shared capture shows up in 'sngate dump'
// with the capture's frame number, ports and length; it decodes exactly
// when the sn codec decodes it, and the hex matches the capture listing.
func TestDumpSharedVectors(t *testing.T) {
	pcaps, _ := filepath.Glob(filepath.Join(vectorsDir, "*.pcap"))
	if len(pcaps) == 0 {
		t.Skip("no shared vectors at " + vectorsDir)
	}
	total, invalid := 0, 0
	for _, pc := range pcaps {
		listing := strings.TrimSuffix(pc, ".pcap") + ".frames.txt"
		want := readVectorFrames(t, listing)
		r := runCLI(t, "", nil, "dump", "--hex", "--pcap", pc)
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", pc, r.code, r.stderr)
		}
		got := map[int][]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			m := dumpLineRe.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s: unparsable dump line %q", pc, line)
			}
			num, _ := strconv.Atoi(m[1])
			got[num] = m
		}
		if len(got) != len(want) {
			t.Errorf("%s: dump printed %d frames, listing has %d", filepath.Base(pc), len(got), len(want))
		}
		for _, w := range want {
			m, ok := got[w.num]
			if !ok {
				t.Errorf("%s: frame %d missing", filepath.Base(pc), w.num)
				continue
			}
			total++
			if !strings.HasSuffix(m[3], ":"+w.srcPort) || !strings.HasSuffix(m[4], ":"+w.dstPort) {
				t.Errorf("%s frame %d: %s → %s, listing %s → %s", filepath.Base(pc), w.num, m[3], m[4], w.srcPort, w.dstPort)
			}
			if n, _ := strconv.Atoi(m[5]); n != w.length {
				t.Errorf("%s frame %d: length %d, want %d", filepath.Base(pc), w.num, n, w.length)
			}
			if !strings.HasSuffix(m[6], "hex="+w.hexField) {
				t.Errorf("%s frame %d: hex differs: %s", filepath.Base(pc), w.num, m[6])
			}
			var p sn.Packet
			decErr := sn.Decode(w.payload, &p)
			isInvalid := strings.HasPrefix(m[6], "INVALID: ")
			if (decErr != nil) != isInvalid {
				t.Errorf("%s frame %d: decode error %v but line %q", filepath.Base(pc), w.num, decErr, m[6])
			}
			if isInvalid {
				invalid++
				if !strings.Contains(m[6], decErr.Error()) {
					t.Errorf("%s frame %d: reason missing: %q", filepath.Base(pc), w.num, m[6])
				}
			} else if !strings.HasPrefix(m[6], p.Type.String()) && !strings.HasPrefix(m[6], "ENCAPSULATED") {
				t.Errorf("%s frame %d: summary %q does not start with %s", filepath.Base(pc), w.num, m[6], p.Type)
			}
		}
	}
	if total < 100 || invalid == 0 {
		t.Fatalf("checked %d frames (%d invalid): the vectors should give more", total, invalid)
	}
}

func TestDumpPublishShowsPayload(t *testing.T) {
	pc := filepath.Join(vectorsDir, "edge_error_paths_raw_client.pcap")
	if _, err := os.Stat(pc); err != nil {
		t.Skip("no shared vectors")
	}
	r := runCLI(t, "", nil, "dump", "--pcap", pc, "--port", "10000")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	if !strings.Contains(r.stdout, `payload="before-connect"`) {
		t.Fatalf("PUBLISH payload not shown:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "26 MQTT-SN frames (3 invalid)") {
		t.Fatalf("summary: %s", r.stderr)
	}
	// A port filter that matches nothing prints nothing.
	r = runCLI(t, "", nil, "dump", "--pcap", pc, "--port", "9")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("port filter: %d %q", r.code, r.stdout)
	}
}

func TestDumpHexStdin(t *testing.T) {
	in := strings.Join([]string{
		"# a comment line",
		"0c 04 04 01 00 3c 73 65 6e 73 6f 72 2d 31", // CONNECT, wrong length 12 vs 14? see below
		"0e:04:04:01:00:3c:73:65:6e:73:6f:72:2d:31", // CONNECT clientId=sensor-1
		"0x030500",         // CONNACK
		"",                 // blank
		"zz",               // not hex
		"05 00 01 00 3c",   // ADVERTISE
		"021f  # trailing", // unknown type
	}, "\n")
	r := runCLI(t, in, nil, "dump")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 6 {
		t.Fatalf("want 6 lines, got %d:\n%s", len(lines), r.stdout)
	}
	for i, want := range []string{"INVALID: ", `CONNECT `, "CONNACK rc=accepted", "UNDECODED: not hex", "ADVERTISE gwId=1 duration=60", "INVALID: "} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[1], `clientId="sensor-1"`) || !strings.Contains(lines[0], "Length") {
		t.Errorf("decode details missing:\n%s", r.stdout)
	}
}

func TestDumpUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"dump", "--listen", ":0", "--pcap", "x.pcap"},
		{"dump", "--forward", "127.0.0.1:1884"},
		{"dump", "--pcap", "/nonexistent.pcap"},
		{"dump", "--pcap", "dump_test.go"},
		{"dump", "--port", "70000", "--pcap", "x"},
		{"dump", "extra-arg"},
	} {
		r := runCLI(t, "", nil, args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n > 1 {
			t.Errorf("%v: error is not short: %q", args, r.stderr)
		}
	}
}

// udpFrame builds an IPv4 or IPv6 UDP packet carrying payload.
func udpFrame(v6 bool, sport, dport uint16, payload []byte) []byte {
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], sport)
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	udp = append(udp, payload...)
	if v6 {
		ip := make([]byte, 40)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
		ip[6], ip[7] = 17, 64
		ip[23], ip[39] = 1, 1 // ::1 → ::1
		return append(ip, udp...)
	}
	ip := make([]byte, 20)
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip[8], ip[9] = 64, 17
	copy(ip[12:], []byte{10, 0, 0, 1})
	copy(ip[16:], []byte{10, 0, 0, 2})
	return append(ip, udp...)
}

func ethernet(ethType uint16, vlan bool, pkt []byte) []byte {
	h := make([]byte, 12)
	if vlan {
		h = append(h, 0x81, 0x00, 0x00, 0x05)
	}
	h = binary.BigEndian.AppendUint16(h, ethType)
	return append(h, pkt...)
}

func sll(pkt []byte) []byte {
	h := make([]byte, 16)
	binary.BigEndian.PutUint16(h[14:], 0x86dd)
	return append(h, pkt...)
}

// classicPcap writes a pcap file in the given byte order.
func classicPcap(order binary.ByteOrder, nano bool, link uint32, pkts ...[]byte) []byte {
	var b bytes.Buffer
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	hdr := make([]byte, 24)
	order.PutUint32(hdr[0:], magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], 65535)
	order.PutUint32(hdr[20:], link)
	b.Write(hdr)
	for i, p := range pkts {
		rec := make([]byte, 16)
		order.PutUint32(rec[0:], 1000)
		order.PutUint32(rec[4:], uint32(i*2000))
		order.PutUint32(rec[8:], uint32(len(p)))
		order.PutUint32(rec[12:], uint32(len(p)))
		b.Write(rec)
		b.Write(p)
	}
	return b.Bytes()
}

// pcapng writes a little-endian pcapng file with one interface.
func pcapng(link uint16, pkts ...[]byte) []byte {
	var b bytes.Buffer
	block := func(typ uint32, body []byte) {
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		n := uint32(12 + len(body))
		_ = binary.Write(&b, binary.LittleEndian, typ)
		_ = binary.Write(&b, binary.LittleEndian, n)
		b.Write(body)
		_ = binary.Write(&b, binary.LittleEndian, n)
	}
	shb := binary.LittleEndian.AppendUint32(nil, 0x1a2b3c4d)
	shb = binary.LittleEndian.AppendUint16(shb, 1)
	shb = binary.LittleEndian.AppendUint16(shb, 0)
	shb = binary.LittleEndian.AppendUint64(shb, ^uint64(0))
	block(0x0a0d0d0a, shb)
	idb := binary.LittleEndian.AppendUint16(nil, link)
	idb = append(idb, 0, 0)
	idb = binary.LittleEndian.AppendUint32(idb, 65535)
	block(1, idb)
	block(5, make([]byte, 8)) // an interface statistics block: skipped
	for i, p := range pkts {
		ts := uint64(1_000_000 + i*250_000)
		epb := binary.LittleEndian.AppendUint32(nil, 0)
		epb = binary.LittleEndian.AppendUint32(epb, uint32(ts>>32))
		epb = binary.LittleEndian.AppendUint32(epb, uint32(ts))
		epb = binary.LittleEndian.AppendUint32(epb, uint32(len(p)))
		epb = binary.LittleEndian.AppendUint32(epb, uint32(len(p)))
		block(6, append(epb, p...))
	}
	return b.Bytes()
}

func TestDumpCaptureFormats(t *testing.T) {
	connack := []byte{0x03, 0x05, 0x00}
	pingreq := []byte{0x02, 0x16}
	tcp := udpFrame(false, 1, 2, nil)
	tcp[9] = 6 // not UDP
	frag := udpFrame(false, 1, 2, pingreq)
	frag[6] = 0x20 // more fragments
	cases := []struct {
		name string
		file []byte
		want []string
	}{
		{"ethernet big-endian", classicPcap(binary.BigEndian, false, linkEthernet,
			ethernet(0x0800, false, udpFrame(false, 1884, 40000, connack)),
			ethernet(0x0806, false, make([]byte, 28)), // ARP: skipped
			ethernet(0x0800, true, udpFrame(false, 40000, 1884, pingreq))),
			[]string{"    1    0.000000 10.0.0.1:1884 → 10.0.0.2:40000 MQTT-SN 3 CONNACK", "    3    0.004000 10.0.0.1:40000 → 10.0.0.2:1884 MQTT-SN 2 PINGREQ"}},
		{"nanoseconds little-endian", classicPcap(binary.LittleEndian, true, linkEthernet,
			ethernet(0x0800, false, udpFrame(false, 5, 6, connack)),
			ethernet(0x0800, false, udpFrame(false, 5, 6, connack))),
			[]string{"    2    0.000002 "}},
		{"linux cooked ipv6", classicPcap(binary.LittleEndian, false, linkSLL, sll(udpFrame(true, 7, 8, pingreq))),
			[]string{"[::1]:7 → [::1]:8 MQTT-SN 2 PINGREQ"}},
		{"raw ip, tcp skipped, fragment reported", classicPcap(binary.LittleEndian, false, linkRaw, tcp, frag,
			udpFrame(false, 9, 10, []byte{0x03, 0x05})),
			[]string{"    2    0.002000 ? → ? UNDECODED: IPv4 fragment", "    3    0.004000 10.0.0.1:9 → 10.0.0.2:10 MQTT-SN 2 INVALID: "}},
		{"pcapng", pcapng(linkEthernet, ethernet(0x0800, false, udpFrame(false, 11, 12, connack)),
			ethernet(0x86dd, false, udpFrame(true, 13, 14, pingreq))),
			[]string{"    1    0.000000 10.0.0.1:11 → 10.0.0.2:12 MQTT-SN 3 CONNACK", "    2    0.250000 [::1]:13 → [::1]:14 MQTT-SN 2 PINGREQ"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "c.pcap")
			if err := os.WriteFile(f, tc.file, 0o600); err != nil {
				t.Fatal(err)
			}
			r := runCLI(t, "", nil, "dump", "--pcap", f)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

// Truncated and corrupt captures end with a one-line error, never a panic.
func TestDumpCorruptCaptures(t *testing.T) {
	good := classicPcap(binary.LittleEndian, false, linkEthernet,
		ethernet(0x0800, false, udpFrame(false, 1, 2, []byte{0x02, 0x16})))
	huge := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(huge[24+8:], 1<<30) // captured length
	for name, data := range map[string][]byte{
		"cut in record header": good[:30],
		"cut in record data":   good[:len(good)-3],
		"absurd length":        huge,
		"cut pcapng":           pcapng(linkEthernet, []byte{1, 2, 3})[:40],
	} {
		f := filepath.Join(t.TempDir(), "c.pcap")
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "", nil, "dump", "--pcap", f)
		if r.code != exitRuntime || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q", name, r.code, r.stderr)
		}
	}
}

// Random bytes through every link type never panic the decoder.
func FuzzDecodeUDP(f *testing.F) {
	f.Add(uint32(linkEthernet), ethernet(0x0800, true, udpFrame(false, 1, 2, []byte{2, 0x16})))
	f.Add(uint32(linkSLL), sll(udpFrame(true, 1, 2, []byte{2, 0x16})))
	f.Add(uint32(linkSLL2), make([]byte, 20))
	f.Add(uint32(linkNull), []byte{2, 0, 0, 0, 0x45})
	f.Fuzz(func(t *testing.T, link uint32, b []byte) {
		d, err := decodeUDP(link, b)
		if err == nil && len(d.Payload) > len(b) {
			t.Fatalf("payload longer than the packet")
		}
	})
}

func FuzzCaptureReader(f *testing.F) {
	f.Add(classicPcap(binary.BigEndian, false, linkEthernet, ethernet(0x0800, false, udpFrame(false, 1, 2, []byte{2, 0x16}))))
	f.Add(pcapng(linkEthernet, ethernet(0x0800, false, udpFrame(false, 1, 2, []byte{2, 0x16}))))
	f.Fuzz(func(t *testing.T, b []byte) {
		cr, err := newCapReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for range 1000 {
			rec, err := cr.Next()
			if err != nil {
				return
			}
			_, _ = decodeUDP(rec.LinkType, rec.Data)
		}
	})
}

// dump --listen prints what it receives; with --forward it relays to a
// gateway and prints the answers too.
func TestDumpLiveRelay(t *testing.T) {
	gw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	go func() { // a gateway that answers every frame with CONNACK
		buf := make([]byte, 1500)
		for {
			_, from, err := gw.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = gw.WriteTo([]byte{0x03, 0x05, 0x00}, from)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	a := &app{ctx: ctx, stdin: strings.NewReader(""), stdout: outW, stderr: errW,
		getenv: func(string) string { return "" }, environ: func() []string { return nil }}
	done := make(chan int, 1)
	go func() {
		done <- a.run([]string{"dump", "--listen", "127.0.0.1:0", "--forward", gw.LocalAddr().String()})
		outW.Close()
		errW.Close()
	}()
	errLines := bufio.NewScanner(errR)
	if !errLines.Scan() {
		t.Fatal("dump printed nothing")
	}
	m := regexp.MustCompile(`listening on (\S+), relaying to`).FindStringSubmatch(errLines.Text())
	if m == nil {
		t.Fatalf("unexpected first line %q", errLines.Text())
	}
	go func() { // drain the rest of stderr
		for errLines.Scan() {
		}
	}()
	outLines := make(chan string, 16)
	go func() {
		out := bufio.NewScanner(outR)
		for out.Scan() {
			outLines <- out.Text()
		}
		close(outLines)
	}()
	c, err := net.Dial("udp", m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect, _ := (&sn.Connect{CleanSession: true, ProtocolID: 1, Duration: 10, ClientID: []byte("dumper")}).Append(nil)
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf) // the relayed answer
	if err != nil || !bytes.Equal(buf[:n], []byte{3, 5, 0}) {
		t.Fatalf("relayed answer %x, %v", buf[:n], err)
	}
	lines := []string{<-outLines, <-outLines}
	if !strings.Contains(lines[0], `CONNECT will=0 clean=1`) || !strings.Contains(lines[0], `clientId="dumper"`) ||
		!strings.Contains(lines[1], "CONNACK rc=accepted [relayed]") || strings.Fields(lines[1])[2] != gw.LocalAddr().String() {
		t.Fatalf("dump lines: %q", lines)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dump exit %d", code)
	}
}
