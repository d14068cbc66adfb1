package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/sngate/sngate/sn"
)

// Gateway is a gateway found by Discover.
type Gateway struct {
	GwID  uint8      // GwID is the gateway ID.
	GwAdd []byte     // GwAdd is the address a client answered with on the gateway's behalf, if any.
	Addr  net.Addr   // Addr is where the answer came from.
	Via   sn.MsgType // Via is sn.TypeGWInfo or sn.TypeAdvertise.
}

// Discover looks for a gateway: it sends SEARCHGW with radius to dst (a
// broadcast or multicast address, or a gateway's unicast address) on pc,
// and returns the first GWINFO or ADVERTISE it receives. It resends
// SEARCHGW every retry (T_SEARCHGW; 5 s when zero) until ctx ends. Discover
// sets and clears read deadlines on pc.
func Discover(ctx context.Context, pc net.PacketConn, dst net.Addr, radius uint8, retry time.Duration) (Gateway, error) {
	if retry <= 0 {
		retry = 5 * time.Second
	}
	req, err := (&sn.SearchGW{Radius: radius}).Append(nil)
	if err != nil {
		return Gateway{}, err
	}
	defer pc.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, sn.MaxLength+1)
	var p sn.Packet
	for {
		if _, err := pc.WriteTo(req, dst); err != nil {
			return Gateway{}, fmt.Errorf("client: discover: send SEARCHGW to %s: %w", dst, err)
		}
		pc.SetReadDeadline(time.Now().Add(retry))
		if ctx.Err() != nil { // cancelled before the deadline above was set
			pc.SetReadDeadline(time.Now())
		}
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return Gateway{}, fmt.Errorf("client: discover: %w", err)
			}
			if ctx.Err() != nil {
				return Gateway{}, ctx.Err()
			}
			if sn.Decode(buf[:n], &p) != nil {
				continue
			}
			switch p.Type {
			case sn.TypeGWInfo:
				gw := Gateway{GwID: p.GWInfo.GwID, Addr: from, Via: sn.TypeGWInfo}
				if len(p.GWInfo.GwAdd) > 0 {
					gw.GwAdd = append([]byte(nil), p.GWInfo.GwAdd...)
				}
				return gw, nil
			case sn.TypeAdvertise:
				return Gateway{GwID: p.Advertise.GwID, Addr: from, Via: sn.TypeAdvertise}, nil
			}
		}
		if err := ctx.Err(); err != nil {
			return Gateway{}, fmt.Errorf("client: discover: %w", err)
		}
	}
}
