package gateway

import (
	"fmt"
)

// reloadReq parks every shard while Reload swaps the admission settings
// the shards read without locks.
type reloadReq struct {
	parked  chan struct{} // one value per shard that has parked
	release chan struct{} // closed when the shards may go on
}

// Reload swaps the gateway's admission settings for those of cfg, at
// once and without dropping any client or session (for SIGHUP):
//
//   - the global predefined topics (Predefined) and the per-client ones
//     (Clients[i].Predefined);
//   - the client allow-list (Clients, RestrictClients);
//   - QoS -1 rights (AllowQoSMinus1, QoSMinus1Identity, Clients[i].QoSMinus1
//     and Address);
//   - the forwarder allow-list (Forwarders, DisableForwarders);
//   - the identity policies (Identities, and LinkPolicies, whose Link
//     fields must name links given to New, as there).
//
// Every other field of cfg is ignored: limits, timers, shards, the logger
// and the links need a new Gateway.
//
// Connected, sleeping and awake clients keep their sessions, address
// bindings and topic registrations. From the swap on, frames are judged by
// the new settings: a connected client uses the new global and per-client
// predefined topics and QoS -1 rights at once. Admission itself (the
// allow-list and the identity policies) is checked at CONNECT and at
// PINGREQ(ClientId) only, so a connected client that the new settings no
// longer allow stays connected (with only the global predefined topics)
// until it connects again or wakes with PINGREQ(ClientId), which is then
// refused; to cut it off at once, take its session over or restart.
//
// On error (an invalid setting) nothing changes. After Close it returns
// ErrClosed.
func (g *Gateway) Reload(cfg Config) error {
	if cfg.QoSMinus1Identity == "" {
		cfg.QoSMinus1Identity = DefaultConfig().QoSMinus1Identity
	}
	pol, err := compilePolicy(&cfg)
	if err != nil {
		return fmt.Errorf("gateway: reload: %w", err)
	}
	allow, err := g.linkAllows(pol, cfg.LinkPolicies)
	if err != nil {
		return fmt.Errorf("gateway: reload: %w", err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	select {
	case <-g.done:
		return ErrClosed
	default:
	}
	apply := func() {
		g.pol = pol
		g.live.Store(pol)
		g.cfg.RestrictClients = cfg.RestrictClients
		g.cfg.AllowQoSMinus1 = cfg.AllowQoSMinus1
		g.cfg.QoSMinus1Identity = cfg.QoSMinus1Identity
		g.cfg.DisableForwarders = cfg.DisableForwarders
		for i, ls := range g.links {
			ls.allow = allow[i]
		}
	}
	if !g.started {
		apply() // no shard runs; Serve waits for reloadMu to start them
	} else if err := g.parkShards(apply); err != nil {
		return err
	}
	g.log.Info("gateway admission settings reloaded", "predefined", len(cfg.Predefined),
		"clients", len(cfg.Clients), "restrict_clients", cfg.RestrictClients,
		"qos_minus1", cfg.AllowQoSMinus1, "forwarders", len(cfg.Forwarders),
		"identities", len(cfg.Identities), "link_policies", len(cfg.LinkPolicies))
	return nil
}

// parkShards stops every shard between two events, runs apply while they
// wait, and lets them go on; each then re-reads its clients' allow-list
// entries. It returns ErrClosed, without running apply, if the gateway
// closes first.
func (g *Gateway) parkShards(apply func()) error {
	r := &reloadReq{parked: make(chan struct{}, len(g.shards)), release: make(chan struct{})}
	defer close(r.release)
	for _, sh := range g.shards {
		select {
		case sh.reload <- r:
		case <-g.done:
			return ErrClosed
		}
	}
	for range g.shards {
		select {
		case <-r.parked:
		case <-g.done:
			return ErrClosed
		}
	}
	apply()
	return nil
}

// onReload parks the shard until Reload has swapped the settings, then
// points its clients at their new allow-list entries (nil for clients no
// longer listed).
func (sh *shard) onReload(r *reloadReq) {
	r.parked <- struct{}{}
	<-r.release
	pol := sh.g.pol
	for _, c := range sh.clients {
		c.policy = pol.clients[c.id]
	}
}
