package semtech

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport"
)

// maxRxpk bounds the rxpk entries processed from one PUSH_DATA (the
// reference forwarder sends at most 8 or 16).
const maxRxpk = 64

// forwarder is one packet forwarder, keyed by gateway EUI.
type forwarder struct {
	eui       [8]byte
	version   uint8
	push      netip.AddrPort
	pull      netip.AddrPort // valid once PULL_DATA arrived
	hasPull   bool
	lastSeen  time.Time
	uplinks   uint64
	downlinks uint64
	dc        *radios.DutyCycle
	bands     map[string]*radios.Budget
	spans     [8]span // recent scheduled downlinks, counter time
	spanPos   int
}

// span is a scheduled transmission in the forwarder's counter (µs).
type span struct {
	start, end uint32
	at         time.Time // when it was scheduled; zero = unused
}

// budget returns the ledger of the sub-band of freqHz.
func (f *forwarder) budget(freqHz uint32) (*radios.Budget, error) {
	b, err := f.dc.Budget(freqHz)
	if err != nil {
		return nil, err
	}
	f.bands[b.SubBand().Name] = b
	return b, nil
}

// busy reports whether [start, end) overlaps a recent downlink of f.
func (f *forwarder) busy(start, end uint32, now time.Time, horizon time.Duration) bool {
	for _, s := range f.spans {
		if s.at.IsZero() || now.Sub(s.at) > horizon {
			continue
		}
		if int32(start-s.end) < 0 && int32(s.start-end) < 0 {
			return true
		}
	}
	return false
}

func (f *forwarder) schedule(start, end uint32, now time.Time) {
	f.spans[f.spanPos] = span{start: start, end: end, at: now}
	f.spanPos = (f.spanPos + 1) % len(f.spans)
}

// inflight is a PULL_RESP awaiting its TX_ACK.
type inflight struct {
	to   transport.Addr
	eui  [8]byte
	bc   bool // broadcast: no TxFailure
	slot int
}

// handle processes one datagram from a forwarder.
func (l *Link) handle(b []byte, from netip.AddrPort) {
	l.stats.datagrams.Add(1)
	pkt, err := radios.ParseGWMP(b)
	if err != nil {
		if errors.Is(err, radios.ErrGWMPVersion) {
			l.stats.unknownVersion.Add(1)
			l.warn(&l.gates.version, "packet-forwarder protocol version not supported (want 1 or 2), datagram dropped", "from", from, "err", err)
			return
		}
		l.stats.badPacket.Add(1)
		l.warn(&l.gates.packet, "malformed packet-forwarder datagram dropped", "from", from, "err", err)
		return
	}
	switch pkt.Type {
	case radios.GWMPPushData, radios.GWMPPullData, radios.GWMPTxAck:
	default:
		l.stats.badPacket.Add(1)
		l.warn(&l.gates.packet, "unexpected packet-forwarder packet type, dropped", "from", from, "type", pkt.Type)
		return
	}
	if len(l.allowed) > 0 && !l.allowed[pkt.EUI] {
		l.stats.refused.Add(1)
		l.warn(&l.gates.refused, "datagram from a forwarder not in the allow-list, dropped", "from", from, "eui", FormatEUI(pkt.EUI))
		return
	}
	switch pkt.Type {
	case radios.GWMPPushData:
		l.onPushData(&pkt, from)
	case radios.GWMPPullData:
		l.onPullData(&pkt, from)
	case radios.GWMPTxAck:
		l.onTxAck(&pkt)
	}
}

// ack answers a PUSH_DATA or PULL_DATA with the same version and token.
func (l *Link) ack(pkt *radios.GWMPPacket, typ uint8, to netip.AddrPort) {
	a := radios.GWMPPacket{Version: pkt.Version, Token: pkt.Token, Type: typ}
	var buf [4]byte
	if _, err := l.conn.WriteToUDPAddrPort(a.Append(buf[:0]), to); err != nil && !l.isClosed() {
		l.log.Warn("packet-forwarder acknowledgement not sent", "link", l.cfg.Name, "to", to, "err", err)
	}
}

// touch finds or creates the forwarder of eui; l.mu is held.
func (l *Link) touch(eui [8]byte, version uint8, now time.Time) *forwarder {
	f := l.fwds[eui]
	if f == nil {
		if len(l.fwds) >= l.cfg.MaxForwarders {
			var old *forwarder
			for _, o := range l.fwds {
				if old == nil || o.lastSeen.Before(old.lastSeen) {
					old = o
				}
			}
			delete(l.fwds, old.eui)
			l.stats.fwdEvicted.Add(1)
			l.warn(&l.gates.evict, "forwarder table full, least recently heard forwarder dropped", "eui", FormatEUI(old.eui))
		}
		f = &forwarder{eui: eui, dc: radios.NewDutyCycle(l.cfg.RegionRules, l.cfg.Budget), bands: make(map[string]*radios.Budget)}
		l.fwds[eui] = f
		l.log.Info("packet forwarder connected", "link", l.cfg.Name, "eui", FormatEUI(eui), "version", version)
	}
	f.version = version
	f.lastSeen = now
	return f
}

func (l *Link) onPullData(pkt *radios.GWMPPacket, from netip.AddrPort) {
	l.stats.pullData.Add(1)
	l.mu.Lock()
	f := l.touch(pkt.EUI, pkt.Version, l.cfg.Now())
	if !f.hasPull || f.pull != from {
		l.log.Debug("forwarder downlink path", "link", l.cfg.Name, "eui", FormatEUI(pkt.EUI), "addr", from)
	}
	f.pull, f.hasPull = from, true
	l.mu.Unlock()
	l.ack(pkt, radios.GWMPPullAck, from)
}

func (l *Link) onPushData(pkt *radios.GWMPPacket, from netip.AddrPort) {
	l.stats.pushData.Add(1)
	// Acknowledged once processed (a malformed body too: resending it
	// would not help), so the forwarder's pace bounds the work.
	defer l.ack(pkt, radios.GWMPPushAck, from)
	body, err := radios.DecodePushData(pkt.JSON)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	f := l.touch(pkt.EUI, pkt.Version, now)
	f.push = from
	if err != nil {
		l.stats.badJSON.Add(1)
		l.warn(&l.gates.json, "malformed PUSH_DATA JSON, dropped", "eui", FormatEUI(pkt.EUI), "err", err)
		return
	}
	for i := range body.RXPK {
		if i == maxRxpk {
			l.stats.badPacket.Add(1)
			l.warn(&l.gates.packet, "PUSH_DATA with too many rxpk entries, rest dropped", "eui", FormatEUI(pkt.EUI), "entries", len(body.RXPK))
			break
		}
		f.uplinks++
		l.uplink(f, &body.RXPK[i], now)
	}
}

// txAckErrors maps TX_ACK error strings to errors and counters.
func (l *Link) txAckError(code string) (error, bool) {
	s := &l.stats
	switch code {
	case radios.TxAckTooLate:
		s.ackTooLate.Add(1)
		return ErrTooLate, true
	case radios.TxAckTooEarly:
		s.ackTooEarly.Add(1)
		return ErrTooEarly, true
	case radios.TxAckCollisionPacket:
		s.ackCollPacket.Add(1)
		return ErrCollisionPacket, true
	case radios.TxAckCollisionBeacon:
		s.ackCollBcn.Add(1)
		return ErrCollisionBeacon, true
	case radios.TxAckTxFreq:
		s.ackTxFreq.Add(1)
		return ErrTxFreq, false
	case radios.TxAckTxPower:
		s.ackTxPower.Add(1)
		return ErrTxPower, false
	case radios.TxAckGPSUnlocked:
		s.ackGPS.Add(1)
		return ErrGPSUnlocked, false
	}
	s.ackOther.Add(1)
	return fmt.Errorf("%w: %q", ErrTxAck, code), false
}

func (l *Link) onTxAck(pkt *radios.GWMPPacket) {
	l.stats.txAcks.Add(1)
	ack, err := radios.DecodeTxAck(pkt.JSON)
	if err != nil {
		l.stats.badJSON.Add(1)
		l.warn(&l.gates.json, "malformed TX_ACK JSON, dropped", "eui", FormatEUI(pkt.EUI), "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.touch(pkt.EUI, pkt.Version, l.cfg.Now())
	in, ok := l.inflight[pkt.Token]
	if !ok || in.eui != pkt.EUI {
		l.stats.ackUnknown.Add(1)
		return
	}
	delete(l.inflight, pkt.Token)
	if ack.TxpkAck.Warn != "" {
		l.stats.ackWarn.Add(1)
		l.log.Debug("TX_ACK warning", "link", l.cfg.Name, "eui", FormatEUI(pkt.EUI), "warn", ack.TxpkAck.Warn)
	}
	if ack.OK() {
		l.stats.txAcked.Add(1)
		return
	}
	cause, congestion := l.txAckError(ack.TxpkAck.Error)
	if congestion {
		l.stats.ackCongestion.Add(1)
	}
	l.log.Info("forwarder refused a downlink", "link", l.cfg.Name, "eui", FormatEUI(pkt.EUI), "to", in.to, "error", ack.TxpkAck.Error)
	if !in.bc {
		l.fail(in.to, fmt.Errorf("semtech %s: forwarder %s: %w: %w", l.cfg.Name, FormatEUI(pkt.EUI), ErrTxAck, cause))
	}
}

// sendTxpk sends a PULL_RESP to f; l.mu is held. Version 2 forwarders
// answer with a TX_ACK, matched by token.
func (l *Link) sendTxpk(f *forwarder, t *radios.TXPK, to transport.Addr, bc bool) error {
	body, err := radios.EncodeJSON(radios.PullResp{TXPK: *t})
	if err != nil {
		return fmt.Errorf("semtech %s: %w", l.cfg.Name, err)
	}
	l.token++
	pkt := radios.GWMPPacket{Version: f.version, Token: l.token, Type: radios.GWMPPullResp, JSON: body}
	if _, err := l.conn.WriteToUDPAddrPort(pkt.Append(make([]byte, 0, 4+len(body))), f.pull); err != nil {
		return fmt.Errorf("semtech %s: PULL_RESP to forwarder %s at %s: %w", l.cfg.Name, FormatEUI(f.eui), f.pull, err)
	}
	f.downlinks++
	if f.version >= 2 {
		l.track(l.token, inflight{to: to, eui: f.eui, bc: bc})
	}
	return nil
}

// track remembers a PULL_RESP until its TX_ACK, evicting the oldest
// beyond Config.MaxInflight; l.mu is held.
func (l *Link) track(token uint16, in inflight) {
	if len(l.ring) < cap(l.ring) {
		in.slot = len(l.ring)
		l.ring = append(l.ring, token)
	} else {
		in.slot = l.ringPos
		if old, ok := l.inflight[l.ring[l.ringPos]]; ok && old.slot == l.ringPos {
			delete(l.inflight, l.ring[l.ringPos])
		}
		l.ring[l.ringPos] = token
		l.ringPos = (l.ringPos + 1) % len(l.ring)
	}
	l.inflight[token] = in
}

// broadcast sends frame "imme" through every forwarder that can; l.mu
// is held.
func (l *Link) broadcast(frame []byte) error {
	now := l.cfg.Now()
	airtime := l.bcast.Airtime(len(frame))
	t := l.txpk(frame)
	t.Imme = true
	t.Freq = float64(l.cfg.BroadcastFreqHz) / 1e6
	t.DatR = radios.DataRate{LoRa: l.cfg.BroadcastDataRate}
	t.CodR = l.cfg.BroadcastCodingRate
	sent, congested := 0, 0
	var lastErr error
	for _, f := range l.fwds {
		if !f.hasPull {
			continue
		}
		b, err := f.budget(l.cfg.BroadcastFreqHz)
		if err == nil {
			err = b.Reserve(airtime, radios.PriorityAdvertise, now)
		}
		if err != nil {
			congested++
			lastErr = err
			continue
		}
		if err := l.sendTxpk(f, &t, NodeAddr(radios.NodeBroadcast), true); err != nil {
			lastErr = err
			continue
		}
		sent++
		l.stats.broadcasts.Add(1)
	}
	switch {
	case sent > 0:
		return nil
	case congested > 0:
		l.stats.txCongested.Add(1)
		return fmt.Errorf("semtech %s: broadcast: %w: %w", l.cfg.Name, transport.ErrCongested, lastErr)
	case lastErr != nil:
		return lastErr
	}
	return fmt.Errorf("semtech %s: broadcast: %w", l.cfg.Name, ErrNoForwarder)
}

// txpk returns the configured downlink fields for frame.
func (l *Link) txpk(frame []byte) radios.TXPK {
	t := radios.TXPK{
		RFCh: l.cfg.RFChain,
		Powe: l.cfg.PowerDBm,
		Modu: "LORA",
		IPol: !l.cfg.NoIQInversion,
		Prea: uint(l.cfg.Preamble),
		NCRC: l.cfg.NoCRC,
	}
	t.SetPayload(frame)
	return t
}

// Forwarders returns what the link knows about each forwarder, for
// metrics, ordered by EUI.
func (l *Link) Forwarders() []ForwarderInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.Now()
	out := make([]ForwarderInfo, 0, len(l.fwds))
	for _, f := range l.fwds {
		fi := ForwarderInfo{EUI: FormatEUI(f.eui), Version: f.version, LastSeen: f.lastSeen, Uplinks: f.uplinks, Downlinks: f.downlinks}
		if f.push.IsValid() {
			fi.PushAddr = f.push.String()
		}
		if f.hasPull {
			fi.PullAddr = f.pull.String()
		}
		for name, b := range f.bands {
			fi.Bands = append(fi.Bands, BandUsage{SubBand: name, Used: b.Used(now), Limit: b.Limit(), Sent: b.Sent()})
		}
		slices.SortFunc(fi.Bands, func(a, b BandUsage) int { return cmp.Compare(a.SubBand, b.SubBand) })
		out = append(out, fi)
	}
	slices.SortFunc(out, func(a, b ForwarderInfo) int { return cmp.Compare(a.EUI, b.EUI) })
	return out
}
