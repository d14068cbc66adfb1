package main

import "time"

// $SYS/sngate/... gauges, for MQTT-only users: the same counts as the
// Prometheus metrics, published by the broker every mqtt.sys_interval.

// sysGauge is one $SYS/sngate value.
type sysGauge struct {
	name string
	fn   func() int64
}

// registerSys registers the gauges with the broker. Failures are logged:
// $SYS is a convenience, not a reason to stop.
func (s *server) registerSys() {
	gauges := s.linkGauges()
	if s.sn != nil {
		gauges = append(gauges, s.sn.sysGauges()...)
	}
	if s.bridge != nil {
		gauges = append(gauges, bridgeGauges(s.bridge)...)
	}
	for _, g := range gauges {
		if err := s.broker.RegisterSysGauge("sngate/"+g.name, g.fn); err != nil {
			s.log.Warn("$SYS gauge not registered", "name", g.name, "err", err)
		}
	}
}

// linkGauges are the link-level gauges (DTLS handshakes, radio airtime).
func (s *server) linkGauges() []sysGauge {
	c := s.comps
	var out []sysGauge
	if len(c.dtls) > 0 {
		out = append(out,
			sysGauge{"dtls/associations", func() int64 {
				var n int64
				for _, l := range c.dtls {
					n += int64(l.Stats().Associations)
				}
				return n
			}},
			sysGauge{"dtls/handshakes/ok", func() int64 {
				var n int64
				for _, l := range c.dtls {
					n += int64(l.Stats().HandshakesOK)
				}
				return n
			}},
			sysGauge{"dtls/handshakes/failed", func() int64 {
				var n int64
				for _, l := range c.dtls {
					n += int64(l.Stats().HandshakesFailed)
				}
				return n
			}},
		)
	}
	for _, l := range c.serial {
		if l.Budget() == nil {
			continue
		}
		out = append(out, sysGauge{"radio/" + l.Name() + "/airtime_used_ms", func() int64 {
			return l.Budget().Used(time.Now()).Milliseconds()
		}})
	}
	return out
}
