package main

// The MQTT-SN side of serve: links and the gateway.

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sngate/sngate/gateway"
	"github.com/sngate/sngate/transport"
	"github.com/sngate/sngate/transport/dtls"
	"github.com/sngate/sngate/transport/semtech"
	"github.com/sngate/sngate/transport/serial"
	"github.com/sngate/sngate/transport/udp"
)

// gatewayParams is the gateway's plain config.
type gatewayParams = gateway.Config

// snGateway is the running gateway.
type snGateway struct {
	gw   *gateway.Gateway
	errs chan error
}

// gatewayConfig maps the sn section onto gateway.Config.
func (c *Config) gatewayConfig(log *slog.Logger) (gateway.Config, error) {
	sn := &c.SN
	g := gateway.DefaultConfig()
	g.GatewayID = uint8(sn.GatewayID)
	if sn.Shards > 0 {
		g.Shards = sn.Shards
	}
	g.InboxSize = sn.Limits.InboxSize
	g.MaxClients = sn.Limits.MaxClients
	g.MaxClientIDLength = sn.Limits.MaxClientIDLength
	g.MaxTopicIDs = sn.Limits.MaxTopicIDs
	g.MaxPacketSize = sn.Limits.MaxPacketSize
	g.MaxPendingConnectsPerSource = sn.Limits.MaxPendingConnectsPerSource
	g.NewClientRate = sn.Limits.NewClientRate
	g.NewClientBurst = sn.Limits.NewClientBurst
	g.MaxSources = sn.Limits.MaxSources
	g.RetryInterval = time.Duration(sn.Timers.TRetry)
	g.MaxRetries = sn.Timers.NRetry
	g.KeepAliveTolerance = sn.Timers.KeepAliveTolerance
	g.SleepTolerance = sn.Timers.SleepTolerance
	g.AdvertiseInterval = time.Duration(sn.AdvertiseInterval)
	g.RestrictClients = sn.RestrictClients
	g.AllowQoSMinus1 = sn.QoSMinus1
	g.QoSMinus1Identity = sn.QoSMinus1Identity
	g.Forwarders = append([]string(nil), sn.Forwarders...)
	g.DisableForwarders = sn.DisableForwarders
	g.Logger = log.With("component", "gateway")
	g.Predefined, g.Clients = c.snTopicsAndClients()
	// DTLS identity bindings are per listener: startGateway adds one
	// LinkPolicy per DTLS link once it is open.
	return g, nil
}

// snTopicsAndClients builds the global predefined topics and the client
// entries; a predefined topic for one client lands in its entry.
func (c *Config) snTopicsAndClients() ([]gateway.TopicConfig, []gateway.ClientConfig) {
	var global []gateway.TopicConfig
	clients := make([]gateway.ClientConfig, 0, len(c.SN.Clients))
	index := map[string]int{}
	for _, cl := range c.SN.Clients {
		e := gateway.ClientConfig{ID: cl.ClientID, Address: cl.Address, QoSMinus1: cl.QoSMinus1}
		for _, t := range cl.Predefined {
			e.Predefined = append(e.Predefined, gateway.TopicConfig{ID: uint16(t.ID), Name: t.Topic})
		}
		index[cl.ClientID] = len(clients)
		clients = append(clients, e)
	}
	for _, p := range c.SN.PredefinedTopics {
		t := gateway.TopicConfig{ID: uint16(p.ID), Name: p.Topic}
		if p.ClientID == "*" {
			global = append(global, t)
			continue
		}
		i, ok := index[p.ClientID]
		if !ok {
			i = len(clients)
			index[p.ClientID] = i
			clients = append(clients, gateway.ClientConfig{ID: p.ClientID})
		}
		clients[i].Predefined = append(clients[i].Predefined, t)
	}
	return global, clients
}

// startGateway opens the MQTT-SN links and starts the gateway on them.
// Without links it returns nil: serve runs the broker alone.
func startGateway(s *server, p gatewayParams, dl []dtlsLink) (*snGateway, error) {
	var links []transport.Link
	fail := func(err error) (*snGateway, error) {
		for _, l := range links {
			_ = l.Close()
		}
		return nil, err
	}
	for _, uc := range s.cfg.udpConfigs() {
		l, err := udp.Listen(uc)
		if err != nil {
			return fail(fmt.Errorf("sn udp %s: %w", uc.Addr, err))
		}
		links = append(links, l)
		s.comps.udp = append(s.comps.udp, l)
	}
	for _, d := range dl {
		l, err := dtls.Listen(d.cfg)
		if err != nil {
			return fail(fmt.Errorf("sn dtls %s: %w", d.cfg.Addr, err))
		}
		links = append(links, l)
		s.comps.dtls = append(s.comps.dtls, l)
		p.LinkPolicies = append(p.LinkPolicies, gateway.LinkPolicy{Link: l, Allowed: d.bindings.Allowed})
	}
	for _, sc := range s.cfg.serialConfigs(s.log) {
		l, err := serial.Open(sc)
		if err != nil {
			return fail(fmt.Errorf("sn serial %s: %w", sc.Device, err))
		}
		links = append(links, l)
		s.comps.serial = append(s.comps.serial, l)
	}
	for _, sc := range s.cfg.semtechConfigs(s.log) {
		l, err := semtech.Listen(sc)
		if err != nil {
			return fail(fmt.Errorf("sn semtech %s: %w", sc.Listen, err))
		}
		links = append(links, l)
		s.comps.semtech = append(s.comps.semtech, l)
	}
	if len(links) == 0 {
		s.log.Warn("no MQTT-SN link configured: running the MQTT broker only")
		return nil, nil
	}
	gw, err := gateway.New(p, s.broker, links...)
	if err != nil {
		return fail(fmt.Errorf("gateway: %w", err))
	}
	g := &snGateway{gw: gw, errs: make(chan error, 1)}
	go func() {
		if err := gw.Serve(); err != nil && !errors.Is(err, gateway.ErrClosed) {
			g.errs <- err
		}
	}()
	s.comps.gateway = gatewayMetrics(gw)
	return g, nil
}

// close stops the gateway: clients get DISCONNECT, links close.
func (g *snGateway) close() error { return g.gw.Close() }

// snErrors delivers an error that stopped the gateway.
func (s *server) snErrors() <-chan error {
	if s.sn == nil {
		return nil
	}
	return s.sn.errs
}

// reloadGateway applies a new configuration's admission settings without
// dropping sessions: predefined topics, the client list, QoS -1 rights,
// forwarders and each DTLS listener's identity bindings (rebuilt from the
// new file, listener by listener). Changed PSK keys, like listeners and
// links, still need a restart.
func (s *server) reloadGateway(cur Config) error {
	if s.sn == nil {
		return nil
	}
	p, err := cur.gatewayConfig(s.log)
	if err != nil {
		return err
	}
	if admission(s.cfg) == admission(cur) {
		return nil
	}
	dl, err := cur.dtlsConfigs(s.log)
	if err != nil {
		return err
	}
	if len(dl) != len(s.comps.dtls) {
		return fmt.Errorf("sn.dtls has %d listeners, %d are running: restart to apply", len(dl), len(s.comps.dtls))
	}
	for i, d := range dl {
		p.LinkPolicies = append(p.LinkPolicies, gateway.LinkPolicy{Link: s.comps.dtls[i], Allowed: d.bindings.Allowed})
	}
	if err := s.sn.gw.Reload(p); err != nil {
		return fmt.Errorf("gateway reload: %w", err)
	}
	s.cfg.SN.PredefinedTopics, s.cfg.SN.Clients, s.cfg.SN.RestrictClients = cur.SN.PredefinedTopics, cur.SN.Clients, cur.SN.RestrictClients
	s.cfg.SN.QoSMinus1, s.cfg.SN.QoSMinus1Identity = cur.SN.QoSMinus1, cur.SN.QoSMinus1Identity
	s.cfg.SN.Forwarders, s.cfg.SN.DisableForwarders = cur.SN.Forwarders, cur.SN.DisableForwarders
	for i := range s.cfg.SN.DTLS {
		s.cfg.SN.DTLS[i].Bindings = cur.SN.DTLS[i].Bindings
	}
	s.log.Info("gateway admission reloaded", "predefined_topics", len(cur.SN.PredefinedTopics),
		"clients", len(cur.SN.Clients), "restrict_clients", cur.SN.RestrictClients, "dtls_listeners", len(dl))
	return nil
}

// admission renders the gateway's admission settings for comparison.
func admission(c Config) string {
	return fmt.Sprint(c.SN.PredefinedTopics, c.SN.Clients, c.SN.RestrictClients, c.SN.QoSMinus1,
		c.SN.QoSMinus1Identity, c.SN.Forwarders, c.SN.DisableForwarders, dtlsBindings(c))
}

func dtlsBindings(c Config) string {
	var b []any
	for _, d := range c.SN.DTLS {
		b = append(b, d.Bindings, len(d.PSK))
		for _, p := range d.PSK {
			b = append(b, p.Identity)
		}
	}
	return fmt.Sprint(b...)
}

// sysGauges are the gateway's $SYS/sngate values.
func (g *snGateway) sysGauges() []sysGauge {
	st := func(f func(gateway.Stats) int64) func() int64 {
		return func() int64 { return f(g.gw.Stats()) }
	}
	return []sysGauge{
		{"clients/total", st(func(s gateway.Stats) int64 { return s.Clients })},
		{"clients/active", st(func(s gateway.Stats) int64 { return s.Active })},
		{"clients/asleep", st(func(s gateway.Stats) int64 { return s.Sleeping })},
		{"messages/in", st(func(s gateway.Stats) int64 { return int64(s.PublishIn) })},
		{"messages/in/qos-1", st(func(s gateway.Stats) int64 { return int64(s.QoSMinus1In) })},
		{"messages/out", st(func(s gateway.Stats) int64 { return int64(s.PublishOut) })},
		{"frames/in", st(func(s gateway.Stats) int64 { return int64(s.FramesIn) })},
		{"frames/out", st(func(s gateway.Stats) int64 { return int64(s.FramesOut) })},
		{"retransmissions", st(func(s gateway.Stats) int64 { return int64(s.Retransmits) })},
		{"drops", st(func(s gateway.Stats) int64 {
			return int64(s.Malformed + s.InboxFull + s.UnknownClient + s.UnexpectedFrames +
				s.DroppedDeliveries + s.WriteErrors + s.LinkCongested)
		})},
		{"rejections", st(func(s gateway.Stats) int64 {
			return int64(s.RejectMaxClients + s.RejectRate + s.RejectClientID + s.RejectAllowList +
				s.RejectIdentity + s.RejectBroker + s.RejectTopicID + s.RejectPublish + s.RejectRegister +
				s.RejectSubscribe + s.RejectQoSMinus1 + s.RejectForwarder + s.RejectCongestion)
		})},
	}
}
