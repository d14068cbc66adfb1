package gateway

import (
	"errors"
	"time"

	"github.com/sngate/sngate/sn"
	"github.com/sngate/sngate/transport"
)

// onSearchGW answers SEARCHGW with GWINFO: broadcast on links that can
// (as Paho gateways do, so other searching clients hear it too), unicast
// otherwise and to clients behind a forwarder.
func (sh *shard) onSearchGW(ev *frameEv) {
	g := sh.g
	g.stats.searchgw.Add(1)
	gw := &sn.GWInfo{GwID: g.cfg.GatewayID}
	if ev.key.nlen == 0 {
		var buf [8]byte
		b, err := gw.Append(buf[:0])
		if err == nil {
			err = ev.link.l.Broadcast(b)
			if err == nil {
				g.stats.gwinfos.Add(1)
				g.stats.framesOut.Add(1)
				return
			}
		}
		if !errors.Is(err, transport.ErrNoBroadcast) {
			sh.writeErr(ev.link, transport.Addr{}, err)
			return
		}
	}
	g.stats.gwinfos.Add(1)
	sh.sendTo(ev.link, &ev.key, ev.whole, gw)
}

// advertiseLoop broadcasts ADVERTISE on every link that can, at start and
// then every AdvertiseInterval.
func (g *Gateway) advertiseLoop() {
	defer g.wg.Done()
	secs := g.cfg.AdvertiseInterval / time.Second
	if secs > 0xFFFF {
		secs = 0xFFFF
	}
	if secs < 1 {
		secs = 1
	}
	adv := &sn.Advertise{GwID: g.cfg.GatewayID, Duration: uint16(secs)}
	var buf [8]byte
	frame, err := adv.Append(buf[:0])
	if err != nil {
		g.log.Error("ADVERTISE encoding failed", "err", err)
		return
	}
	t := time.NewTicker(g.cfg.AdvertiseInterval)
	defer t.Stop()
	for {
		for _, ls := range g.links {
			err := ls.l.Broadcast(frame)
			switch {
			case err == nil:
				g.stats.advertises.Add(1)
				g.stats.framesOut.Add(1)
			case errors.Is(err, transport.ErrNoBroadcast), errors.Is(err, transport.ErrClosed):
			case errors.Is(err, transport.ErrCongested):
				g.stats.linkCongested.Add(1)
			default:
				g.stats.writeErrors.Add(1)
				g.log.Warn("ADVERTISE failed", "link", ls.name, "err", err)
			}
		}
		select {
		case <-g.done:
			return
		case <-t.C:
		}
	}
}
