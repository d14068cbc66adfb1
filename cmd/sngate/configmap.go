package main

// Mapping of the configuration onto the packages' plain config structs.

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/broker/auth"
	"github.com/sngate/sngate/broker/listeners"
	"github.com/sngate/sngate/radios"
	"github.com/sngate/sngate/transport/dtls"
	"github.com/sngate/sngate/transport/semtech"
	"github.com/sngate/sngate/transport/serial"
	"github.com/sngate/sngate/transport/udp"
)

// brokerConfig maps the mqtt section onto broker.Config. An inline ACL
// is not part of it: serve installs it with Server.SetAuth.
func (c *Config) brokerConfig() broker.Config {
	m := c.MQTT
	return broker.Config{
		Version:                    "sngate " + readBuildInfo().Version,
		MaxSessions:                m.Limits.MaxSessions,
		MaxQueuedMessages:          m.Limits.MaxQueuedMessages,
		MaxInflight:                uint16(m.Limits.MaxInflight),
		QueueQoS0:                  m.Limits.QueueQoS0,
		MaxSubscriptionsPerSession: m.Limits.MaxSubscriptionsPerSession,
		MaxSessionExpiry:           time.Duration(m.Limits.MaxSessionExpiry),
		MaxTopicLength:             m.Limits.MaxTopicLength,
		MaxTopicLevels:             m.Limits.MaxTopicLevels,
		MaxRetainedMessages:        m.Limits.MaxRetainedMessages,
		MaxRetainedBytes:           m.Limits.MaxRetainedBytes,
		SysInterval:                time.Duration(m.SysInterval),
		AllowAnonymous:             m.AllowAnonymous,
		PasswordFile:               m.PasswordFile,
		ACLFile:                    m.ACLFile,
		CertAsUsername:             m.CertAsUsername,
	}
}

// listenerConfigs maps mqtt.listeners onto listeners.Config values.
func (c *Config) listenerConfigs() []listeners.Config {
	out := make([]listeners.Config, 0, len(c.MQTT.Listeners))
	for i, l := range c.MQTT.Listeners {
		out = append(out, listeners.Config{
			Name:              fmt.Sprintf("%s%d", l.Type, i),
			Kind:              l.Type,
			Addr:              l.Addr,
			CertFile:          l.Cert,
			KeyFile:           l.Key,
			CAFile:            l.CA,
			RequireClientCert: l.RequireClientCert,
			Path:              l.Path,
			MaxConnections:    c.MQTT.Limits.MaxConnections,
			MaxPacketSize:     uint32(c.MQTT.Limits.MaxPacketSize),
			ConnectTimeout:    time.Duration(c.MQTT.Limits.ConnectTimeout),
			WriteTimeout:      time.Duration(c.MQTT.Limits.WriteTimeout),
		})
	}
	return out
}

// udpConfigs maps sn.udp onto udp.Config values.
func (c *Config) udpConfigs() []udp.Config {
	out := make([]udp.Config, 0, len(c.SN.UDP))
	for i, u := range c.SN.UDP {
		name := "udp"
		if i > 0 {
			name = fmt.Sprintf("udp%d", i)
		}
		out = append(out, udp.Config{
			Addr:               u.Listen,
			Name:               name,
			MTU:                u.MTU,
			MulticastGroup:     u.Multicast,
			MulticastInterface: u.MulticastInterface,
			MulticastTTL:       u.MulticastTTL,
			ReadBuffer:         u.ReadBuffer,
			WriteBuffer:        u.WriteBuffer,
		})
	}
	return out
}

// dtlsLink is one DTLS listener's config and its identity bindings.
type dtlsLink struct {
	cfg      dtls.Config
	bindings *dtls.Bindings
}

// dtlsConfigs maps sn.dtls onto dtls.Config values and bindings.
func (c *Config) dtlsConfigs(logger *slog.Logger) ([]dtlsLink, error) {
	out := make([]dtlsLink, 0, len(c.SN.DTLS))
	for i, d := range c.SN.DTLS {
		key := fmt.Sprintf("sn.dtls[%d]", i)
		name := "dtls"
		if i > 0 {
			name = fmt.Sprintf("dtls%d", i)
		}
		cfg := dtls.Config{
			Addr:               d.Listen,
			Name:               name,
			CertFile:           d.Cert,
			KeyFile:            d.Key,
			CAFile:             d.CA,
			RequireClientCert:  d.RequireClientCert,
			CipherSuites:       d.CipherSuites,
			ConnectionIDLength: d.CID,
			MTU:                d.MTU,
			MaxPending:         d.MaxPending,
			MaxAssociations:    d.MaxAssociations,
			HandshakeTimeout:   time.Duration(d.HandshakeTimeout),
			IdleTimeout:        time.Duration(d.IdleTimeout),
			Logger:             logger.With("link", name),
		}
		for j, p := range d.PSK {
			k, err := decodeHexKey(p.KeyHex)
			if err != nil {
				return nil, fmt.Errorf("%s.psk[%d].key_hex: %w", key, j, err)
			}
			cfg.PSKs = append(cfg.PSKs, dtls.PSK{Identity: p.Identity, Key: k})
		}
		// A PSK identity without a binding may use the client ID equal to
		// itself; anything else needs a binding.
		bound := map[string]bool{}
		list := make([]dtls.Binding, 0, len(d.Bindings)+len(d.PSK))
		for _, e := range d.Bindings {
			list = append(list, dtls.Binding{Identity: e.Identity, ClientIDs: e.ClientIDs})
			bound[e.Identity] = true
		}
		for _, p := range d.PSK {
			if !bound[p.Identity] {
				list = append(list, dtls.Binding{Identity: p.Identity, ClientIDs: []string{"{identity}"}})
				bound[p.Identity] = true
			}
		}
		b, err := dtls.NewBindings(list)
		if err != nil {
			return nil, fmt.Errorf("%s.bindings: %w", key, err)
		}
		out = append(out, dtlsLink{cfg: cfg, bindings: b})
	}
	return out, nil
}

// serialConfigs maps sn.serial onto serial.Config values.
func (c *Config) serialConfigs(logger *slog.Logger) []serial.Config {
	out := make([]serial.Config, 0, len(c.SN.Serial))
	for _, s := range c.SN.Serial {
		name := s.Name
		if name == "" {
			name = s.Kind
		}
		out = append(out, serial.Config{
			Kind:            serial.Kind(s.Kind),
			Device:          s.Device,
			Baud:            s.Baud,
			Name:            name,
			APIMode:         s.APIMode,
			PayloadLimit:    s.PayloadLimit,
			XBeeRadius:      uint8(s.XBeeRadius),
			TxDevice:        s.TxDevice,
			TxBaud:          s.TxBaud,
			DeliveryTimeout: time.Duration(s.DeliveryTimeout),
			NetworkID:       uint8(s.NetworkID),
			LoRa: radios.LoRaParams{
				SF:          s.LoRa.SF,
				BandwidthHz: s.LoRa.BandwidthHz,
				CodingRate:  s.LoRa.CodingRate,
				Preamble:    s.LoRa.Preamble,
			},
			FrequencyHz:    uint32(s.FrequencyHz),
			PowerDBm:       s.PowerDBm,
			SyncWord:       uint8(s.SyncWord),
			Region:         s.Region,
			CommandTimeout: time.Duration(s.CommandTimeout),
			RxQueue:        s.RxQueue,
			TxQueue:        s.TxQueue,
			Logger:         logger, // the link adds its own name
		})
	}
	return out
}

// semtechConfigs maps sn.semtech onto semtech.Config values.
func (c *Config) semtechConfigs(logger *slog.Logger) []semtech.Config {
	out := make([]semtech.Config, 0, len(c.SN.Semtech))
	for _, s := range c.SN.Semtech {
		out = append(out, semtech.Config{
			Listen:              s.Listen,
			Name:                s.Name,
			NetworkID:           uint8(s.NetworkID),
			RXDelay:             time.Duration(s.RXDelay),
			TxLead:              time.Duration(s.TxLead),
			DedupWindow:         time.Duration(s.DedupWindow),
			NoIQInversion:       s.NoIQInversion,
			PowerDBm:            s.PowerDBm,
			RFChain:             uint(s.RFChain),
			Preamble:            s.Preamble,
			NoCRC:               s.NoCRC,
			Region:              s.Region,
			BroadcastFreqHz:     uint32(s.BroadcastFrequencyHz),
			BroadcastDataRate:   s.BroadcastDataRate,
			BroadcastCodingRate: s.BroadcastCodingRate,
			Forwarders:          s.Forwarders,
			MaxForwarders:       s.MaxForwarders,
			MaxNodes:            s.MaxNodes,
			NodeQueue:           s.NodeQueue,
			MaxQueued:           s.MaxQueued,
			MaxInflight:         s.MaxInflight,
			FrameTTL:            time.Duration(s.FrameTTL),
			RxQueue:             s.RxQueue,
			PayloadLimit:        s.PayloadLimit,
			Logger:              logger,
		})
	}
	return out
}

// buildACL turns inline ACL rules into the broker's ACL, through its own
// file format so that both forms mean exactly the same.
func buildACL(rules []ACLRule) (*auth.ACL, error) {
	var anon, all strings.Builder
	users := map[string]*strings.Builder{}
	clients := map[string]*strings.Builder{}
	var userOrder, clientOrder []string
	for _, r := range rules {
		access := r.Access
		if access == "" {
			access = "readwrite"
		}
		switch {
		case r.All:
			fmt.Fprintf(&all, "pattern %s %s\n", access, r.Topic)
		case r.User != "":
			b, ok := users[r.User]
			if !ok {
				b = &strings.Builder{}
				users[r.User] = b
				userOrder = append(userOrder, r.User)
			}
			fmt.Fprintf(b, "topic %s %s\n", access, r.Topic)
		case r.ClientID != "":
			b, ok := clients[r.ClientID]
			if !ok {
				b = &strings.Builder{}
				clients[r.ClientID] = b
				clientOrder = append(clientOrder, r.ClientID)
			}
			fmt.Fprintf(b, "topic %s %s\n", access, r.Topic)
		default:
			fmt.Fprintf(&anon, "topic %s %s\n", access, r.Topic)
		}
	}
	var text strings.Builder
	text.WriteString(anon.String())
	for _, u := range userOrder {
		fmt.Fprintf(&text, "user %s\n%s", u, users[u].String())
	}
	for _, id := range clientOrder {
		fmt.Fprintf(&text, "client %s\n%s", id, clients[id].String())
	}
	text.WriteString(all.String())
	acl, err := auth.ParseACL(strings.NewReader(text.String()))
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	return acl, nil
}

// loadAuth reads the password file and the ACL (file or inline) named by
// m, for Server.SetAuth at start and on SIGHUP.
func loadAuth(m MQTTConfig) (*auth.Users, *auth.ACL, error) {
	var users *auth.Users
	if m.PasswordFile != "" {
		u, err := auth.LoadPasswordFile(m.PasswordFile)
		if err != nil {
			return nil, nil, fmt.Errorf("mqtt.password_file: %w", err)
		}
		users = u
	}
	var acl *auth.ACL
	switch {
	case m.ACLFile != "":
		a, err := auth.LoadACLFile(m.ACLFile)
		if err != nil {
			return nil, nil, fmt.Errorf("mqtt.acl_file: %w", err)
		}
		acl = a
	case len(m.ACL) > 0:
		a, err := buildACL(m.ACL)
		if err != nil {
			return nil, nil, fmt.Errorf("mqtt.acl: %w", err)
		}
		acl = a
	}
	return users, acl, nil
}
