package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/spf13/cobra"
)

// dumpOptions are the flags of 'sngate dump'.
type dumpOptions struct {
	listen  string
	forward string
	pcap    string
	ports   []uint16
	showHex bool
}

func (a *app) newDumpCmd() *cobra.Command {
	var o dumpOptions
	var ports []uint
	cmd := &cobra.Command{
		Use:   "dump [--listen ADDR [--forward GATEWAY] | --pcap FILE]",
		Short: "Decode MQTT-SN frames: live on UDP, from a capture file, or hex on stdin",
		Long: `Print one line per MQTT-SN frame, in a form close to tshark's:

  No.  time  source → destination  MQTT-SN length  message

The message is the sn package's one-line rendering (type and fields;
ENCAPSULATED frames show the inner message in braces). A frame that does
not decode prints INVALID and the reason.

Sources (one of):
  --listen ADDR     receive datagrams on a UDP address (such as :1884). With
                    --forward HOST:PORT dump relays every datagram to that
                    gateway and relays its answers back, printing both
                    directions: point a sensor at dump to watch a session.
  --pcap FILE       read a capture (classic pcap or pcapng; Ethernet, Linux
                    cooked, loopback or raw IP; IPv4 and IPv6). Every UDP
                    datagram is decoded, or only those to or from --port.
                    Frame numbers are the capture's, as in Wireshark.
  (neither)         read hex frames from standard input, one per line
                    (spaces, colons and a 0x prefix are ignored; # starts
                    a comment).

Times are seconds since the first frame.`,
		Args: cobra.NoArgs,
		RunE: a.command(func(cmd *cobra.Command, _ []string) error {
			for _, p := range ports {
				if p == 0 || p > 65535 {
					return usagef("dump: --port %d is outside 1..65535", p)
				}
				o.ports = append(o.ports, uint16(p))
			}
			switch {
			case o.listen != "" && o.pcap != "":
				return usagef("dump: --listen and --pcap exclude each other")
			case o.forward != "" && o.listen == "":
				return usagef("dump: --forward needs --listen")
			case o.listen != "":
				return a.dumpLive(cmd.Context(), o)
			case o.pcap != "":
				return a.dumpPcap(o)
			}
			return a.dumpHex(o)
		}),
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "", "UDP address to receive MQTT-SN datagrams on, such as :1884")
	f.StringVar(&o.forward, "forward", "", "with --listen: relay datagrams to this gateway address and print its answers")
	f.StringVar(&o.pcap, "pcap", "", "capture file to decode (pcap or pcapng)")
	f.UintSliceVar(&ports, "port", nil, "with --pcap: only UDP datagrams to or from these ports (repeatable)")
	f.BoolVar(&o.showHex, "hex", false, "append the frame bytes in hex to each line")
	return cmd
}

// frameLine formats one decoded frame.
type frameLine struct {
	w       io.Writer
	mu      sync.Mutex
	showHex bool
	start   time.Time
	pkt     sn.Packet
	invalid int
	frames  int
}

// print decodes frame and writes its line. num is the frame number; 0
// numbers frames in the order they are printed.
func (fl *frameLine) print(num int, at time.Time, src, dst string, frame []byte, note string) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.start.IsZero() {
		fl.start = at
	}
	fl.frames++
	if num <= 0 {
		num = fl.frames
	}
	var msg string
	if err := sn.Decode(frame, &fl.pkt); err != nil {
		fl.invalid++
		msg = "INVALID: " + err.Error()
	} else {
		msg = fl.pkt.String()
		if fl.pkt.Type == sn.TypePublish {
			msg += " payload=" + quotePayload(fl.pkt.Publish.Data)
		}
	}
	if note != "" {
		msg += " [" + note + "]"
	}
	if fl.showHex {
		msg += " hex=" + hex.EncodeToString(frame)
	}
	fmt.Fprintf(fl.w, "%5d %11.6f %s → %s MQTT-SN %d %s\n", num, at.Sub(fl.start).Seconds(), src, dst, len(frame), msg)
}

// dumpPcap decodes every UDP datagram of a capture file.
func (a *app) dumpPcap(o dumpOptions) error {
	f, err := os.Open(o.pcap)
	if err != nil {
		return usagef("dump: %w", err)
	}
	defer f.Close()
	cr, err := newCapReader(f)
	if err != nil {
		return usagef("dump %s: %w", o.pcap, err)
	}
	fl := &frameLine{w: a.stdout, showHex: o.showHex}
	other := 0
	for {
		rec, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("dump %s: %w", o.pcap, err)
		}
		if fl.start.IsZero() {
			fl.start = rec.Time // times count from the first packet, as in tshark
		}
		d, err := decodeUDP(rec.LinkType, rec.Data)
		if errors.Is(err, errNotUDP) {
			other++
			continue
		}
		if err != nil {
			fmt.Fprintf(a.stdout, "%5d %11.6f ? → ? UNDECODED: %v\n", rec.Num, rec.Time.Sub(fl.start).Seconds(), err)
			continue
		}
		if len(o.ports) > 0 && !slices.Contains(o.ports, d.Src.Port()) && !slices.Contains(o.ports, d.Dst.Port()) {
			other++
			continue
		}
		note := ""
		if d.Truncated {
			note = "truncated capture"
		}
		fl.print(rec.Num, rec.Time, d.Src.String(), d.Dst.String(), d.Payload, note)
	}
	fmt.Fprintf(a.stderr, "dump: %d MQTT-SN frames (%d invalid), %d other packets skipped\n", fl.frames, fl.invalid, other)
	return nil
}

// dumpHex decodes hex frames read from standard input.
func (a *app) dumpHex(o dumpOptions) error {
	fl := &frameLine{w: a.stdout, showHex: o.showHex}
	sc := bufio.NewScanner(a.stdin)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	num := 0
	now := time.Now()
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		num++
		frame, err := parseHexFrame(line)
		if err != nil {
			fmt.Fprintf(a.stdout, "%5d %11.6f stdin → - UNDECODED: %v\n", num, 0.0, err)
			continue
		}
		fl.print(num, now, "stdin", "-", frame, "")
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("dump: read stdin: %w", err)
	}
	return nil
}

// parseHexFrame decodes "0x0c 04 ..", "0c:04:.." or "0c04.." into bytes.
func parseHexFrame(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	s = strings.NewReplacer(" ", "", "\t", "", ":", "", "0x", "", "0X", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not hex: %w", err)
	}
	if len(b) == 0 {
		return nil, errors.New("empty frame")
	}
	return b, nil
}

// maxRelayPeers bounds the clients dump --forward relays for at once.
const maxRelayPeers = 1024

// dumpLive receives datagrams on a UDP socket until the context ends.
func (a *app) dumpLive(ctx context.Context, o dumpOptions) error {
	pc, err := net.ListenPacket("udp", o.listen)
	if err != nil {
		return fmt.Errorf("dump: listen %s: %w", o.listen, err)
	}
	defer pc.Close()
	local := pc.LocalAddr().String()
	var gw *net.UDPAddr
	if o.forward != "" {
		gw, err = net.ResolveUDPAddr("udp", o.forward)
		if err != nil {
			return usagef("dump: --forward %s: %w", o.forward, err)
		}
		fmt.Fprintf(a.stderr, "dump: listening on %s, relaying to %s\n", local, gw)
	} else {
		fmt.Fprintf(a.stderr, "dump: listening on %s\n", local)
	}
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()

	fl := &frameLine{w: a.stdout, showHex: o.showHex}
	r := &relay{pc: pc, gw: gw, fl: fl, peers: map[string]net.PacketConn{}}
	defer r.closeAll()
	buf := make([]byte, 65536)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("dump: read: %w", err)
		}
		// Print, then relay: the answer cannot be printed before the
		// frame it answers.
		fl.print(0, time.Now(), addrString(from), local, buf[:n], "")
		if gw != nil {
			r.forward(from, buf[:n])
		}
	}
}

func addrString(a net.Addr) string {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return a.String()
}

// relay forwards datagrams between clients and a gateway, one upstream
// socket per client so that answers find their way back.
type relay struct {
	pc    net.PacketConn
	gw    *net.UDPAddr
	fl    *frameLine
	mu    sync.Mutex
	peers map[string]net.PacketConn
	wg    sync.WaitGroup
}

func (r *relay) forward(from net.Addr, frame []byte) {
	key := from.String()
	r.mu.Lock()
	up, ok := r.peers[key]
	if !ok {
		if len(r.peers) >= maxRelayPeers {
			r.mu.Unlock()
			return
		}
		c, err := net.ListenPacket("udp", ":0")
		if err != nil {
			r.mu.Unlock()
			return
		}
		up = c
		r.peers[key] = up
		r.wg.Add(1)
		go r.back(up, from)
	}
	r.mu.Unlock()
	_, _ = up.WriteTo(frame, r.gw)
}

// back relays the gateway's answers to one client.
func (r *relay) back(up net.PacketConn, client net.Addr) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	gw := netip.AddrPortFrom(r.gw.AddrPort().Addr().Unmap(), r.gw.AddrPort().Port()).String()
	for {
		n, _, err := up.ReadFrom(buf)
		if err != nil {
			return
		}
		r.fl.print(0, time.Now(), gw, addrString(client), buf[:n], "relayed")
		_, _ = r.pc.WriteTo(buf[:n], client)
	}
}

func (r *relay) closeAll() {
	r.mu.Lock()
	for _, c := range r.peers {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// maxShownPayload bounds the payload text printed per PUBLISH.
const maxShownPayload = 60

// quotePayload renders a payload as a quoted string, cut after
// maxShownPayload bytes.
func quotePayload(b []byte) string {
	if len(b) > maxShownPayload {
		return strconv.Quote(string(b[:maxShownPayload])) + "..."
	}
	return strconv.Quote(string(b))
}
