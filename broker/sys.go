package broker

import (
	"fmt"
	"strconv"
	"time"
)

// sysGauge is a value published under $SYS.
type sysGauge struct {
	topic string
	fn    func() int64
}

// RegisterSysGauge adds a value that the server publishes, retained, as
// $SYS/name every Config.SysInterval (for example the gateway's
// "sngate/clients/asleep"). fn is called from the timer goroutine with no
// broker lock held; it must be quick and must not call into the Server.
// Registering a name again replaces its function.
func (srv *Server) RegisterSysGauge(name string, fn func() int64) error {
	if fn == nil {
		return fmt.Errorf("broker: sys gauge %q: nil function", name)
	}
	topic := "$SYS/" + name
	if err := srv.limits.checkName(topic); err != nil {
		return fmt.Errorf("broker: sys gauge: %w", err)
	}
	srv.sysMu.Lock()
	defer srv.sysMu.Unlock()
	for i := range srv.sysGauges {
		if srv.sysGauges[i].topic == topic {
			srv.sysGauges[i].fn = fn
			return nil
		}
	}
	srv.sysGauges = append(srv.sysGauges, sysGauge{topic: topic, fn: fn})
	return nil
}

// startSys schedules the first $SYS publication.
func (srv *Server) startSys() {
	if srv.cfg.SysInterval <= 0 {
		return
	}
	srv.sched.add(srv.clock.Now(), srv.sysTick)
}

func (srv *Server) sysTick(*timerEntry) {
	srv.publishSys()
	srv.sched.add(srv.clock.Now().Add(srv.cfg.SysInterval), srv.sysTick)
}

// publishSys publishes the $SYS topics, retained, QoS 0.
func (srv *Server) publishSys() {
	st := srv.Stats()
	pub := func(topic string, payload []byte) {
		_ = srv.route(&Message{Topic: topic, Payload: payload, Retain: true}, false)
	}
	num := func(topic string, v int64) { pub(topic, strconv.AppendInt(nil, v, 10)) }
	pub("$SYS/broker/version", []byte(srv.cfg.Version))
	num("$SYS/broker/uptime", int64(st.Uptime/time.Second))
	num("$SYS/broker/clients/connected", st.SessionsConnected)
	num("$SYS/broker/clients/total", st.Sessions)
	num("$SYS/broker/messages/received", int64(st.MessagesReceived))
	num("$SYS/broker/messages/sent", int64(st.MessagesSent))
	num("$SYS/broker/messages/queued", st.Queued)
	num("$SYS/broker/messages/inflight", st.Inflight)
	num("$SYS/broker/messages/dropped", int64(st.DroppedQueueFull+st.DroppedQoS0+st.DroppedExpired))
	num("$SYS/broker/subscriptions/count", st.Subscriptions)
	num("$SYS/broker/retained messages/count", st.Retained)
	srv.sysMu.Lock()
	gauges := append([]sysGauge(nil), srv.sysGauges...)
	srv.sysMu.Unlock()
	for _, g := range gauges {
		num(g.topic, g.fn())
	}
}
